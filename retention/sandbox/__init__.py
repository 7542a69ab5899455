"""A faithful stand-in for the GoTo Meeting REST API, served on loopback."""

from retention.sandbox.account import Account, OAuthClient
from retention.sandbox.app import account_state, create_app
from retention.sandbox.datafile import SandboxDataError, dump_account, load_account
from retention.sandbox.faults import SandboxOptions
from retention.sandbox.generate import generate_account

__all__ = [
    "Account",
    "OAuthClient",
    "SandboxDataError",
    "SandboxOptions",
    "account_state",
    "create_app",
    "dump_account",
    "generate_account",
    "load_account",
]
