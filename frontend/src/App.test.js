import { describe, it, expect, vi, beforeEach } from "vitest";
import { render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { api, ApiError, listeners } from "./lib/api.js";
import { resetApi } from "./test/mockApi.js";
import { catalogue, state, runningSession, segment } from "./test/fixtures.js";

vi.mock("./lib/api.js", async (orig) =>
  (await import("./test/mockApi.js")).mockApi(orig),
);

beforeEach(() => {
  resetApi(api);
  api.launchLink.mockResolvedValue("");
  api.catalogue.mockResolvedValue(catalogue);
  api.today.mockResolvedValue([]);
});

describe("App", () => {
  it("shows onboarding until the device has joined, and labels the preview", async () => {
    api.state.mockResolvedValue(state({ onboarded: false, preview: true }));
    render(App);
    expect(
      await screen.findByRole("heading", { name: "Join your employer" }),
    ).toBeInTheDocument();
    expect(screen.getByText("Preview")).toBeInTheDocument();
    expect(
      screen.getByText(/nothing is captured, stored or sent/),
    ).toBeInTheDocument();
    expect(screen.queryByRole("navigation")).not.toBeInTheDocument();
    expect(api.catalogue).not.toHaveBeenCalled();
  });

  it("starts and stops a session through the engine", async () => {
    const user = userEvent.setup();
    api.state.mockResolvedValue(state());
    render(App);
    await user.selectOptions(
      await screen.findByLabelText("Project"),
      "Website — ACME",
    );
    await user.selectOptions(screen.getByLabelText("Activity"), "Development");
    await user.type(screen.getByLabelText(/Memo/), "landing page");

    api.state.mockResolvedValue(
      state({
        running: true,
        session: runningSession,
        elapsed_seconds: 0,
        source: "builtin",
        segment: {
          index: 0,
          start: new Date().toISOString(),
          end: new Date(Date.now() + 600_000).toISOString(),
          remaining_seconds: 600,
          screenshots_planned: 2,
          screenshots_taken: 0,
        },
      }),
    );
    await user.click(screen.getByRole("button", { name: "Start" }));
    expect(api.start).toHaveBeenCalledWith(12, 5, "landing page");
    expect(
      await screen.findByText("Tracking Website · Development"),
    ).toBeInTheDocument();
    expect(
      screen.getByRole("heading", { name: "Current segment 1" }),
    ).toBeInTheDocument();
    expect(screen.queryByLabelText("Project")).not.toBeInTheDocument();

    api.state.mockResolvedValue(state());
    await user.click(screen.getByRole("button", { name: "Stop" }));
    expect(api.stop).toHaveBeenCalledTimes(1);
    expect(await screen.findByText("Not tracking")).toBeInTheDocument();
  });

  it("shows a failed action with what to do, until dismissed", async () => {
    const user = userEvent.setup();
    api.state.mockResolvedValue(
      state({ running: true, session: runningSession }),
    );
    api.stop.mockRejectedValue(
      new ApiError({ code: "internal", message: "database is locked" }),
    );
    render(App);
    await user.click(await screen.findByRole("button", { name: "Stop" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("database is locked");
    expect(alert).toHaveTextContent("restart pow.do");
    await user.click(within(alert).getByRole("button", { name: "Dismiss" }));
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("follows engine events: state, idle prompt, segments and background problems", async () => {
    api.state.mockResolvedValue(state());
    render(App);
    await screen.findByLabelText("Project");
    expect(Object.keys(listeners).sort()).toEqual([
      "catalogue",
      "link",
      "segment",
      "state",
    ]);

    listeners.state(
      state({
        running: true,
        session: runningSession,
        idle: { since: "2026-11-21T10:03:00Z", idle_seconds: 600 },
        network: {
          relays: [
            { url: "wss://relay.example", status: "offline", error: "refused" },
          ],
          blossoms: [],
          dvm_last_seen: null,
          pending: 3,
        },
        error: {
          code: "relay_unreachable",
          message: "wss://relay.example did not answer.",
          action: "",
        },
      }),
    );
    expect(
      await screen.findByRole("alertdialog", { name: "You were away" }),
    ).toBeInTheDocument();
    expect(
      screen.getByText("wss://relay.example did not answer."),
    ).toBeInTheDocument();
    expect(screen.getByText("0/1 relays connected")).toBeInTheDocument();
    expect(
      screen.getByText("3 segments waiting to be sent"),
    ).toBeInTheDocument();

    listeners.segment(segment({ id: "s1", state: "sent" }));
    expect(
      await screen.findByText("Sent · waiting for receipt"),
    ).toBeInTheDocument();
    listeners.segment(segment({ id: "s1", state: "accepted" }));
    expect(await screen.findByText("Accepted")).toBeInTheDocument();
    expect(
      screen.queryByText("Sent · waiting for receipt"),
    ).not.toBeInTheDocument();
    expect(
      screen.getAllByRole("listitem").filter((li) => li.dataset.state),
    ).toHaveLength(1);
  });

  it("switches to settings from the keyboard", async () => {
    const user = userEvent.setup();
    api.state.mockResolvedValue(state());
    api.settings.mockResolvedValue({
      relays: ["wss://relay.example"],
      blossoms: ["https://blossom.example"],
      dvm_npub: "npub1dvm",
      fingerprint: "apple-river-stone-cloud-maple-tiger",
      own_npub: "npub1me",
      activitywatch_url: "http://localhost:5600",
      activitywatch_key: "",
      jpeg_quality: 80,
      excluded_apps: ["keepassxc"],
      data_dir: "/home/w/.local/share/pow.do",
      disk_quota_mb: 500,
      disk_used_mb: 12,
    });
    render(App);
    await screen.findByLabelText("Project");
    screen.getByRole("button", { name: "Settings" }).focus();
    await user.keyboard("{Enter}");
    expect(
      await screen.findByText("apple-river-stone-cloud-maple-tiger"),
    ).toBeInTheDocument();
    expect(screen.getByLabelText(/Relays/)).toHaveValue("wss://relay.example");
    expect(screen.getByRole("button", { name: "Settings" })).toHaveAttribute(
      "aria-current",
      "page",
    );
  });
});
