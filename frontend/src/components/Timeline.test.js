import { describe, it, expect, vi } from "vitest";
import { render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import Timeline from "./Timeline.svelte";
import { segment, tinyJpeg } from "../test/fixtures.js";

const rows = () => screen.getAllByRole("listitem");

describe("Timeline", () => {
  it("shows each segment's state, thumbnail and active minutes", () => {
    const segments = [
      segment({
        id: "a",
        state: "accepted",
        thumbnail: tinyJpeg,
        active_seconds: 540,
      }),
      segment({
        id: "b",
        start: "2026-11-21T10:10:00Z",
        end: "2026-11-21T10:20:00Z",
        state: "rejected",
        reason: "hash chain broken",
        permanent: true,
        active_seconds: 0,
      }),
      segment({
        id: "c",
        start: "2026-11-21T10:20:00Z",
        end: "2026-11-21T10:30:00Z",
        state: "sent",
        screenshots: 1,
      }),
      segment({
        id: "d",
        start: "2026-11-21T10:30:00Z",
        end: "2026-11-21T10:40:00Z",
        state: "queued",
        deleted: 1,
      }),
      segment({
        id: "e",
        start: "2026-11-21T10:40:00Z",
        end: "2026-11-21T10:50:00Z",
        state: "reviewing",
        review_until: "2026-11-21T10:52:00Z",
      }),
    ];
    render(Timeline, { segments, onreview: vi.fn() });
    expect(screen.getByRole("heading")).toHaveTextContent(
      "Today · 5 segments · 30 min active",
    );
    const [a, b, c, d, e] = rows();

    expect(a).toHaveTextContent("10:00–10:10");
    expect(a).toHaveTextContent("Accepted");
    expect(a).toHaveTextContent("9 min active");
    expect(within(a).getByRole("img")).toHaveAttribute("src", tinyJpeg);
    expect(within(a).getByRole("img")).toHaveAccessibleName(
      "First screenshot of 10:00–10:10",
    );

    expect(b).toHaveTextContent("Rejected");
    expect(b).toHaveTextContent("Reason: hash chain broken.");
    expect(b).toHaveTextContent("It will not be sent again");
    expect(within(b).queryByRole("img")).not.toBeInTheDocument();
    expect(b).toHaveTextContent("no screenshot");

    expect(c).toHaveTextContent("Sent · waiting for receipt");
    expect(c).toHaveTextContent("1 screenshot");
    expect(d).toHaveTextContent("Queued");
    expect(d).toHaveTextContent("2 screenshots (1 deleted)");
    expect(e).toHaveTextContent("Waiting for review");
    expect(e).toHaveTextContent("Sent at 10:52 unless you review it first.");

    // Only a segment still in review can be opened for review.
    for (const row of [a, b, c, d]) {
      expect(within(row).queryByRole("button")).not.toBeInTheDocument();
    }
    expect(within(e).getByRole("button")).toHaveAccessibleName(
      "Review 10:40–10:50",
    );
  });

  it("shows a held segment as held, with why, and not as waiting for review", () => {
    render(Timeline, {
      segments: [
        segment({
          state: "held",
          reason:
            "waiting for input after the segment to decide about idle time",
          review_until: null,
        }),
      ],
      onreview: vi.fn(),
    });
    const row = rows()[0];
    expect(row).toHaveAttribute("data-state", "held");
    expect(within(row).getByText("Held · waiting for input")).toHaveClass(
      "badge",
      "state-held",
    );
    expect(row).toHaveTextContent(
      "Held: waiting for input after the segment to decide about idle time.",
    );
    expect(row).not.toHaveTextContent("Waiting for review");
    expect(row).not.toHaveTextContent("Reason:");
    expect(within(row).queryByRole("button")).not.toBeInTheDocument();
  });

  it("says a retryable rejection will be retried", () => {
    render(Timeline, {
      segments: [
        segment({
          state: "rejected",
          reason: "blob not found",
          permanent: false,
        }),
      ],
      onreview: vi.fn(),
    });
    expect(rows()[0]).toHaveTextContent("pow.do will try again.");
  });

  it("opens the review of a waiting segment", async () => {
    const user = userEvent.setup();
    const onreview = vi.fn();
    const s = segment({ id: "r", state: "reviewing" });
    render(Timeline, { segments: [s], onreview });
    await user.click(screen.getByRole("button", { name: /Review/ }));
    expect(onreview).toHaveBeenCalledWith(s);
  });

  it("has an empty state", () => {
    render(Timeline, { segments: [], onreview: vi.fn() });
    expect(screen.getByText("No segments yet today.")).toBeInTheDocument();
    expect(screen.queryByRole("list")).not.toBeInTheDocument();
  });
});
