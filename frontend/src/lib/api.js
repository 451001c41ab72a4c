// The only module that talks to the Go side (window.go.app.App, bound by Wails).
// Component tests replace it with vi.mock; every failure arrives as an ApiError.

export class ApiError extends Error {
  constructor({
    code = "internal",
    message = "Something went wrong.",
    action = "",
  } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.action = action;
  }
}

// toApiError normalises a rejection. The Go side's ErrorFormatter sends the JSON
// {code, message, action}, which Wails' runtime wraps in an Error; Wails itself
// rejects with plain text (e.g. when arguments do not parse).
export function toApiError(e) {
  if (e instanceof ApiError) return e;
  if (e && typeof e === "object" && typeof e.code === "string") {
    return new ApiError(e);
  }
  const text = e instanceof Error ? e.message : String(e);
  const problem = parseProblem(text);
  return new ApiError(problem ?? { message: text });
}

function parseProblem(text) {
  if (!text.startsWith("{")) return null;
  try {
    const p = JSON.parse(text);
    return typeof p?.code === "string" && typeof p?.message === "string"
      ? p
      : null;
  } catch {
    return null;
  }
}

function backend() {
  const app = globalThis.go?.app?.App;
  if (!app) {
    throw new ApiError({
      code: "no_backend",
      message: "This window is not connected to the pow.do engine.",
      action:
        "Open pow.do from its desktop entry, or run `wails dev` and use http://localhost:34115.",
    });
  }
  return app;
}

async function call(name, ...args) {
  try {
    return await backend()[name](...args);
  } catch (e) {
    throw toApiError(e);
  }
}

export const api = {
  state: () => call("State"),
  launchLink: () => call("LaunchLink"),
  join: (link, passphrase) => call("Join", link, passphrase),
  unlock: (passphrase) => call("Unlock", passphrase),
  catalogue: () => call("Catalogue"),
  refreshCatalogue: () => call("RefreshCatalogue"),
  start: (projectId, activityId, memo) =>
    call("Start", projectId, activityId, memo),
  pause: () => call("Pause"),
  resume: () => call("Resume"),
  stop: () => call("Stop"),
  today: () => call("Today"),
  screenshots: (segmentId) => call("Screenshots", segmentId),
  deleteScreenshot: (segmentId, name) =>
    call("DeleteScreenshot", segmentId, name),
  idleDecision: (choice) => call("IdleDecision", choice),
  settings: () => call("Settings"),
  saveSettings: (settings) => call("SaveSettings", settings),
  exportKey: (passphrase) => call("ExportKey", passphrase),
};

// onEvent listens to an engine event ("state", "segment", "catalogue", "link")
// and returns a function that stops listening.
export function onEvent(kind, fn) {
  const rt = globalThis.runtime;
  if (typeof rt?.EventsOn !== "function") return () => {};
  const name = "powdo:" + kind;
  const off = rt.EventsOn(name, fn);
  return typeof off === "function" ? off : () => rt.EventsOff(name);
}
