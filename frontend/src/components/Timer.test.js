import { describe, it, expect, vi } from "vitest";
import { render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import Timer from "./Timer.svelte";
import CurrentSegment from "./CurrentSegment.svelte";
import { state, runningSession } from "../test/fixtures.js";

const T0 = Date.parse("2026-11-21T10:03:20Z");

function handlers() {
  return {
    onstart: vi.fn(),
    onpause: vi.fn(),
    onresume: vi.fn(),
    onstop: vi.fn(),
  };
}

describe("Timer", () => {
  it("starts only once a project and activity are chosen, by mouse or keyboard", async () => {
    const user = userEvent.setup();
    const h = handlers();
    const { rerender } = render(Timer, {
      state: state(),
      now: T0,
      receivedAt: T0,
      canStart: false,
      ...h,
    });
    expect(screen.getByText("Not tracking")).toBeInTheDocument();
    expect(screen.getByRole("timer")).toHaveTextContent("00:00:00");
    const start = screen.getByRole("button", { name: "Start" });
    expect(start).toBeDisabled();
    await user.click(start);
    expect(h.onstart).not.toHaveBeenCalled();

    await rerender({ canStart: true });
    expect(start).toBeEnabled();
    await user.tab();
    expect(start).toHaveFocus();
    await user.keyboard(" ");
    expect(h.onstart).toHaveBeenCalledTimes(1);
    expect(
      screen.queryByRole("button", { name: "Stop" }),
    ).not.toBeInTheDocument();
  });

  it("counts elapsed time forward while running and offers pause and stop", async () => {
    const user = userEvent.setup();
    const h = handlers();
    const running = state({
      running: true,
      session: runningSession,
      elapsed_seconds: 90,
    });
    const { rerender } = render(Timer, {
      state: running,
      now: T0,
      receivedAt: T0,
      ...h,
    });
    expect(
      screen.getByText("Tracking Website · Development"),
    ).toBeInTheDocument();
    expect(screen.getByRole("timer")).toHaveTextContent("00:01:30");
    expect(screen.getByText("“landing page”")).toBeInTheDocument();

    await rerender({ now: T0 + 5_400 });
    expect(screen.getByRole("timer")).toHaveTextContent("00:01:35");
    await rerender({ now: T0 + 3_600_000 });
    expect(screen.getByRole("timer")).toHaveTextContent("01:01:30");

    expect(
      screen.queryByRole("button", { name: "Start" }),
    ).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Pause" }));
    await user.click(screen.getByRole("button", { name: "Stop" }));
    expect(h.onpause).toHaveBeenCalledTimes(1);
    expect(h.onstop).toHaveBeenCalledTimes(1);
  });

  it("stands still while paused and offers resume", async () => {
    const user = userEvent.setup();
    const h = handlers();
    const paused = state({
      running: true,
      paused: true,
      session: runningSession,
      elapsed_seconds: 600,
    });
    const { rerender } = render(Timer, {
      state: paused,
      now: T0,
      receivedAt: T0,
      ...h,
    });
    await rerender({ now: T0 + 60_000 });
    expect(screen.getByText("Paused")).toBeInTheDocument();
    expect(screen.getByRole("timer")).toHaveTextContent("00:10:00");
    expect(
      screen.queryByRole("button", { name: "Pause" }),
    ).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Resume" }));
    expect(h.onresume).toHaveBeenCalledTimes(1);
  });
});

describe("CurrentSegment", () => {
  const seg = {
    index: 2,
    start: "2026-11-21T10:00:00Z",
    end: "2026-11-21T10:10:00Z",
    remaining_seconds: 400,
    screenshots_planned: 2,
    screenshots_taken: 1,
  };
  const activity = {
    active_seconds: 144,
    percent: 72,
    keys: 40,
    clicks: 3,
    moves: 120,
  };

  it("counts down to the segment's end and shows the activity meter", async () => {
    const { rerender } = render(CurrentSegment, {
      segment: seg,
      activity,
      source: "activitywatch",
      now: T0,
    });
    expect(screen.getByRole("heading")).toHaveTextContent("Current segment 3");
    expect(screen.getByTestId("countdown")).toHaveTextContent("6:40");
    expect(
      screen.getByText("10:00–10:10", { exact: false }),
    ).toBeInTheDocument();
    const meter = screen.getByRole("meter", {
      name: "Activity in this segment",
    });
    expect(meter).toHaveAttribute("aria-valuenow", "72");
    expect(screen.getByTestId("activity-percent")).toHaveTextContent("72%");
    expect(screen.getByText(/40 keys · 3 clicks/)).toBeInTheDocument();
    expect(screen.getByText("Screenshots 1 of 2")).toBeInTheDocument();
    expect(
      screen.getByText("Activity source: ActivityWatch"),
    ).toBeInTheDocument();

    await rerender({ now: T0 + 100_000 });
    expect(screen.getByTestId("countdown")).toHaveTextContent("5:00");
    await rerender({ now: T0 + 3_600_000 }); // never negative
    expect(screen.getByTestId("countdown")).toHaveTextContent("0:00");
  });

  it("labels the preview source honestly", () => {
    render(CurrentSegment, {
      segment: null,
      activity,
      source: "none",
      preview: true,
      now: T0,
    });
    expect(
      screen.getByText("No segment is being recorded."),
    ).toBeInTheDocument();
    expect(
      screen.getByText(
        /Activity source: none \(preview: nothing is recorded\)/,
      ),
    ).toBeInTheDocument();
  });
});
