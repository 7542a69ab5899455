"""Named approvals of plans: OpenSSH signatures, the allowed signers, and each plan's approvals."""
