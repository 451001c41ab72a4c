import { describe, it, expect, vi, beforeEach } from "vitest";
import { render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import ReviewPanel from "./ReviewPanel.svelte";
import { api, ApiError } from "../lib/api.js";
import { resetApi } from "../test/mockApi.js";
import { segment, tinyJpeg } from "../test/fixtures.js";

vi.mock("../lib/api.js", async (orig) =>
  (await import("../test/mockApi.js")).mockApi(orig),
);

const shots = [
  {
    name: "screenshots/001.jpg",
    taken_at: "2026-11-21T10:03:17Z",
    data_url: tinyJpeg,
    width: 1,
    height: 1,
  },
  {
    name: "screenshots/002.jpg",
    taken_at: "2026-11-21T10:07:41Z",
    data_url: tinyJpeg,
    width: 1,
    height: 1,
  },
];
const reviewing = segment({
  id: "seg-9",
  state: "reviewing",
  review_until: "2026-11-21T10:12:00Z",
});

describe("ReviewPanel", () => {
  beforeEach(() => {
    resetApi(api);
    api.screenshots.mockResolvedValue(structuredClone(shots));
  });

  it("deletes a screenshot only after confirmation", async () => {
    const user = userEvent.setup();
    const onchanged = vi.fn();
    render(ReviewPanel, { segment: reviewing, onchanged, onclose: vi.fn() });
    expect(api.screenshots).toHaveBeenCalledWith("seg-9");
    expect(await screen.findAllByRole("img")).toHaveLength(2);
    expect(
      screen.getByText(/before this segment is sent at 10:12/),
    ).toBeInTheDocument();

    // First ask: keep it.
    await user.click(
      screen.getByRole("button", {
        name: "Delete screenshot taken at 10:07:41",
      }),
    );
    const confirm = screen.getByRole("alertdialog");
    expect(confirm).toHaveTextContent(
      "Delete the screenshot taken at 10:07:41?",
    );
    expect(
      within(confirm).getByRole("button", { name: "Keep it" }),
    ).toHaveFocus();
    await user.keyboard("{Enter}");
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();
    expect(api.deleteScreenshot).not.toHaveBeenCalled();
    expect(screen.getAllByRole("img")).toHaveLength(2);

    // Second ask: delete.
    await user.click(
      screen.getByRole("button", {
        name: "Delete screenshot taken at 10:07:41",
      }),
    );
    await user.click(screen.getByRole("button", { name: "Delete screenshot" }));
    expect(api.deleteScreenshot).toHaveBeenCalledWith(
      "seg-9",
      "screenshots/002.jpg",
    );
    expect(screen.getAllByRole("img")).toHaveLength(1);
    expect(screen.getByRole("img")).toHaveAccessibleName(
      "Screenshot taken at 10:03:17",
    );
    expect(onchanged).toHaveBeenCalledTimes(1);
  });

  it("keeps the screenshot and says why when the engine refuses", async () => {
    const user = userEvent.setup();
    api.deleteScreenshot.mockRejectedValue(
      new ApiError({
        code: "not_ready",
        message: "The review window has closed.",
        action: "The segment is already queued.",
      }),
    );
    const onchanged = vi.fn();
    render(ReviewPanel, { segment: reviewing, onchanged, onclose: vi.fn() });
    await screen.findAllByRole("img");
    await user.click(
      screen.getByRole("button", {
        name: "Delete screenshot taken at 10:03:17",
      }),
    );
    await user.click(screen.getByRole("button", { name: "Delete screenshot" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "The review window has closed.",
    );
    expect(screen.getAllByRole("img")).toHaveLength(2);
    expect(onchanged).not.toHaveBeenCalled();
  });

  it("offers no deletion once the segment left review, and closes with Escape", async () => {
    const user = userEvent.setup();
    const onclose = vi.fn();
    render(ReviewPanel, {
      segment: { ...reviewing, state: "queued" },
      onclose,
    });
    await screen.findAllByRole("img");
    expect(screen.getByText(/left review/)).toBeInTheDocument();
    expect(
      screen.queryByRole("button", { name: /Delete/ }),
    ).not.toBeInTheDocument();
    screen.getByRole("button", { name: "Close review" }).focus();
    await user.keyboard("{Escape}");
    expect(onclose).toHaveBeenCalledTimes(1);
  });
});
