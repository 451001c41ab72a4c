import { describe, it, expect, vi, beforeEach } from "vitest";
import { render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import IdlePrompt from "./IdlePrompt.svelte";
import { api, ApiError } from "../lib/api.js";
import { resetApi } from "../test/mockApi.js";

vi.mock("../lib/api.js", async (orig) =>
  (await import("../test/mockApi.js")).mockApi(orig),
);

const idle = { since: "2026-11-21T10:03:00Z", idle_seconds: 420 };

describe("IdlePrompt", () => {
  beforeEach(() => resetApi(api));

  it("asks with the idle period and focuses the first choice", () => {
    render(IdlePrompt, { idle });
    const dialog = screen.getByRole("alertdialog", { name: "You were away" });
    expect(dialog).toHaveTextContent(
      "No keyboard or mouse input for 7 min, since 10:03.",
    );
    expect(
      screen.getByRole("button", { name: "Keep it as work" }),
    ).toHaveFocus();
  });

  it.each([
    ["Keep it as work", "keep"],
    ["Discard it", "discard"],
    ["Discard and stop", "stop"],
  ])("%s sends %s", async (label, choice) => {
    const user = userEvent.setup();
    const ondecided = vi.fn();
    render(IdlePrompt, { idle, ondecided });
    await user.click(screen.getByRole("button", { name: label }));
    expect(api.idleDecision).toHaveBeenCalledExactlyOnceWith(choice);
    expect(ondecided).toHaveBeenCalledWith(choice);
  });

  it("keeps Tab inside the dialog and works from the keyboard", async () => {
    const user = userEvent.setup();
    const ondecided = vi.fn();
    render(IdlePrompt, { idle, ondecided });
    await user.tab();
    await user.tab();
    expect(
      screen.getByRole("button", { name: "Discard and stop" }),
    ).toHaveFocus();
    await user.tab(); // wraps around
    expect(
      screen.getByRole("button", { name: "Keep it as work" }),
    ).toHaveFocus();
    await user.tab({ shift: true }); // and back
    expect(
      screen.getByRole("button", { name: "Discard and stop" }),
    ).toHaveFocus();
    await user.tab({ shift: true });
    await user.keyboard("{Enter}");
    expect(api.idleDecision).toHaveBeenCalledWith("discard");
  });

  it("stays open and explains when the engine refuses", async () => {
    const user = userEvent.setup();
    api.idleDecision.mockRejectedValue(
      new ApiError({
        code: "not_ready",
        message: "pow.do is not asking about idle time.",
      }),
    );
    const ondecided = vi.fn();
    render(IdlePrompt, { idle, ondecided });
    await user.click(screen.getByRole("button", { name: "Discard it" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "pow.do is not asking about idle time.",
    );
    expect(ondecided).not.toHaveBeenCalled();
    expect(screen.getByRole("button", { name: "Discard it" })).toBeEnabled();
  });
});
