import { describe, it, expect, vi } from "vitest";
import { render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import ErrorBanner from "./ErrorBanner.svelte";

describe("ErrorBanner", () => {
  it("renders nothing without a problem", () => {
    const { container } = render(ErrorBanner, { problem: null });
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    expect(container.textContent.trim()).toBe("");
  });

  it("fills in what to do for a known problem the engine sent without advice", () => {
    render(ErrorBanner, {
      problem: {
        code: "relay_unreachable",
        message: "wss://relay.example did not answer.",
        action: "",
      },
    });
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("Relay unreachable");
    expect(alert).toHaveTextContent("wss://relay.example did not answer.");
    expect(alert).toHaveTextContent(
      "What to do: Check your internet connection.",
    );
    expect(screen.queryByRole("button")).not.toBeInTheDocument();
  });

  it("prefers the engine's own advice", () => {
    render(ErrorBanner, {
      problem: {
        code: "activitywatch_not_found",
        message: "Nothing answers on localhost:5600.",
        action: "Start aw-server.",
      },
    });
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("ActivityWatch not found");
    expect(alert).toHaveTextContent("What to do: Start aw-server.");
    expect(alert).not.toHaveTextContent("built-in watcher");
  });

  it("treats an unknown code as internal, and can be dismissed when allowed", async () => {
    const user = userEvent.setup();
    const ondismiss = vi.fn();
    render(ErrorBanner, {
      problem: { code: "weird", message: "boom" },
      ondismiss,
    });
    expect(screen.getByRole("alert")).toHaveTextContent("Something went wrong");
    expect(screen.getByRole("alert")).toHaveTextContent("boom");
    await user.click(screen.getByRole("button", { name: "Dismiss" }));
    expect(ondismiss).toHaveBeenCalledTimes(1);
  });
});
