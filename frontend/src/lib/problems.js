// Words for problems the engine reports (engineapi.ProblemCode). The engine's own
// action text wins; these fill in when it sent none.

export const PROBLEMS = {
  relay_unreachable: {
    title: "Relay unreachable",
    action:
      "Check your internet connection. pow.do keeps finished segments and sends them when the relay answers again.",
  },
  blossom_unreachable: {
    title: "Upload server unreachable",
    action:
      "Check your internet connection. Segments wait in the outbox and go out in order later.",
  },
  key_not_allowed: {
    title: "Key not allowed",
    action:
      "The relay does not accept your key. Ask your employer to check that your invite was claimed, or ask for a new one.",
  },
  invite_invalid: {
    title: "Not an invite link",
    action:
      "Copy the whole link from your employer's message; it starts with powdo://join.",
  },
  invite_expired: {
    title: "Invite expired",
    action: "Ask your employer for a new invite link.",
  },
  activitywatch_not_found: {
    title: "ActivityWatch not found",
    action:
      "Start ActivityWatch, or leave it off: pow.do then records activity with its built-in watcher.",
  },
  disk_quota: {
    title: "Disk quota",
    action:
      "Reconnect to the network so waiting segments can be sent, or raise the quota in Settings.",
  },
  segment_rejected: {
    title: "Segment rejected",
    action: "Read the reason in today's timeline and tell your employer.",
  },
  wrong_passphrase: {
    title: "Wrong passphrase",
    action: "Try again; the passphrase is the one you chose when joining.",
  },
  invalid_input: { title: "Check your input", action: "" },
  not_ready: { title: "Not possible right now", action: "" },
  unsupported: { title: "Not available", action: "" },
  no_backend: {
    title: "Engine not connected",
    action: "Restart pow.do.",
  },
  internal: {
    title: "Something went wrong",
    action:
      "If this keeps happening, restart pow.do and send its log to your employer.",
  },
};

export function describeProblem(problem) {
  const known = PROBLEMS[problem?.code] ?? PROBLEMS.internal;
  return {
    title: known.title,
    message: problem?.message || "",
    action: problem?.action || known.action,
  };
}
