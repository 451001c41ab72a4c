import { describe, it, expect, vi, afterEach } from "vitest";
import { api, ApiError, onEvent, toApiError } from "./api.js";

afterEach(() => {
  delete globalThis.go;
  delete globalThis.runtime;
});

describe("api", () => {
  it("calls the bound Go method with its arguments", async () => {
    const Start = vi.fn().mockResolvedValue(null);
    const State = vi.fn().mockResolvedValue({ running: true });
    globalThis.go = { app: { App: { Start, State } } };
    await api.start(12, 5, "memo");
    expect(Start).toHaveBeenCalledWith(12, 5, "memo");
    expect(await api.state()).toEqual({ running: true });
  });

  it("turns the Go side's {code, message, action} rejection into an ApiError", async () => {
    // What Wails' runtime does with app.FormatError's JSON: new Error(json).
    const json = JSON.stringify({
      code: "invite_expired",
      message: "This invite was already used.",
      action: "Ask for a new one.",
    });
    globalThis.go = {
      app: { App: { Join: vi.fn().mockRejectedValue(new Error(json)) } },
    };
    const err = await api.join("powdo://join", "pass").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      code: "invite_expired",
      message: "This invite was already used.",
      action: "Ask for a new one.",
    });
  });

  it("turns Wails' own string rejections and a missing backend into ApiErrors", async () => {
    globalThis.go = {
      app: {
        App: {
          Stop: vi.fn().mockRejectedValue("error parsing arguments: bad"),
        },
      },
    };
    await expect(api.stop()).rejects.toMatchObject({
      code: "internal",
      message: "error parsing arguments: bad",
    });
    delete globalThis.go;
    await expect(api.stop()).rejects.toMatchObject({ code: "no_backend" });
    expect(toApiError(new Error('{"not": "a problem"}'))).toMatchObject({
      code: "internal",
      message: '{"not": "a problem"}',
    });
    expect(toApiError(new TypeError("x is not a function"))).toMatchObject({
      code: "internal",
      message: "x is not a function",
    });
  });

  it("listens to powdo: events through the Wails runtime", () => {
    const off = vi.fn();
    const EventsOn = vi.fn(() => off);
    globalThis.runtime = { EventsOn };
    const fn = vi.fn();
    const stop = onEvent("state", fn);
    expect(EventsOn).toHaveBeenCalledWith("powdo:state", fn);
    stop();
    expect(off).toHaveBeenCalledTimes(1);
  });

  it("does nothing without the runtime (tests, plain browser)", () => {
    expect(onEvent("state", () => {})).toBeTypeOf("function");
  });
});
