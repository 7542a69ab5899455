// The passkey ceremony: register a passkey (the line for the operator), and sign a decision.
// The only script of the console, served as a file (the Content-Security-Policy allows no other).
"use strict";

function toBytes(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function toText(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// An assertion as the console takes it: the WebAuthn fields in base64url.
function assertionJSON(got) {
  return {
    id: got.id,
    rawId: toText(got.rawId),
    type: got.type,
    response: {
      clientDataJSON: toText(got.response.clientDataJSON),
      authenticatorData: toText(got.response.authenticatorData),
      signature: toText(got.response.signature),
    },
  };
}

async function post(url, body) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const value = await answer.json();
  if (!answer.ok) {
    throw new Error(value.error + (value.hint ? " (" + value.hint + ")" : ""));
  }
  return value;
}

function say(id, text) {
  document.getElementById(id).textContent = text;
}

async function register() {
  say("register-status", "Asking your authenticator…");
  try {
    const options = await post("/passkeys/options", {});
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    (options.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    const made = await navigator.credentials.create({ publicKey: options });
    const answer = await post("/passkeys/register", {
      id: made.id,
      rawId: toText(made.rawId),
      type: made.type,
      response: {
        clientDataJSON: toText(made.response.clientDataJSON),
        attestationObject: toText(made.response.attestationObject),
      },
    });
    say("passkey-line", answer.line);
    say("register-status", "Give this line to the operator; it counts once it is listed.");
  } catch (error) {
    say("register-status", "Not registered: " + error.message);
  }
}

async function sign(proposal, choice, comment) {
  say("decide-status", "Asking your authenticator…");
  try {
    const asked = await post("/proposals/" + proposal + "/challenge", choice);
    const options = asked.options;
    options.challenge = toBytes(options.challenge);
    (options.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    const got = await navigator.credentials.get({ publicKey: options });
    const answer = await post("/proposals/" + proposal + "/approve", {
      verdict: asked.verdict,
      reason: asked.reason,
      decision: asked.decision,
      issued_at: asked.issued_at,
      comment: comment,
      credential: assertionJSON(got),
    });
    say("decide-status", "Signed (" + answer.verdict + ") as " + answer.by + "; " + answer.approvals + " approval(s) count.");
    window.location.reload();
  } catch (error) {
    say("decide-status", "Not signed: " + error.message);
  }
}

async function lift(row) {
  say("lift-status", "Asking your authenticator…");
  try {
    const removal = { sessionId: row.dataset.session, action: row.dataset.action };
    const asked = await post("/postponements/challenge", removal);
    const options = asked.options;
    options.challenge = toBytes(options.challenge);
    (options.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    const got = await navigator.credentials.get({ publicKey: options });
    await post("/postponements/lift", {
      sessionId: asked.sessionId,
      action: asked.action,
      issued_at: asked.issued_at,
      credential: assertionJSON(got),
    });
    window.location.reload();
  } catch (error) {
    say("lift-status", "Not lifted: " + error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("register-passkey");
  if (button) {
    button.addEventListener("click", register);
  }
  document.querySelectorAll("button.lift").forEach((row) => {
    row.addEventListener("click", () => lift(row));
  });
  const form = document.getElementById("decide");
  if (!form) {
    return;
  }
  const proposal = form.dataset.proposal;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    sign(proposal, {
      items: data.getAll("item"),
      organizers: data.getAll("organizer"),
      meetings: data.getAll("meeting"),
      until: data.get("until") || "",
      reason: data.get("reason") || "",
    }, data.get("comment") || "");
  });
  const comment = () => form.elements.comment.value || "";
  document.querySelectorAll(".sign-decision").forEach((other) => {
    other.addEventListener("click", () => {
      sign(proposal, { decision: other.dataset.decision }, comment());
    });
  });
  document.querySelectorAll(".withdraw-decision").forEach((mine) => {
    mine.addEventListener("click", () => {
      sign(proposal, { withdraw: mine.dataset.decision }, comment());
    });
  });
  const reject = document.getElementById("reject");
  if (reject) {
    reject.addEventListener("submit", (event) => {
      event.preventDefault();
      sign(proposal, { reject: reject.elements.reason.value || "" }, comment());
    });
  }
});
