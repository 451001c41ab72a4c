import { describe, it, expect, vi, beforeEach } from "vitest";
import { render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import Settings from "./Settings.svelte";
import { api, ApiError } from "../lib/api.js";
import { resetApi } from "../test/mockApi.js";

vi.mock("../lib/api.js", async (orig) =>
  (await import("../test/mockApi.js")).mockApi(orig),
);

const current = {
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
};

describe("Settings", () => {
  beforeEach(() => {
    resetApi(api);
    api.settings.mockResolvedValue(structuredClone(current));
    api.saveSettings.mockImplementation(async (s) => s);
  });

  it("saves edited lists and numbers, keeping read-only fields as they were", async () => {
    const user = userEvent.setup();
    render(Settings);
    const relays = await screen.findByLabelText(/Relays/);
    expect(screen.getByText("npub1dvm")).toBeInTheDocument();
    expect(
      screen.getByText("apple-river-stone-cloud-maple-tiger"),
    ).toBeInTheDocument();
    expect(screen.getByText("npub1me")).toBeInTheDocument();

    await user.type(relays, "\n  wss://second.example  \n\n");
    await user.clear(screen.getByLabelText(/JPEG quality/));
    await user.type(screen.getByLabelText(/JPEG quality/), "60");
    await user.click(screen.getByRole("button", { name: "Save settings" }));

    expect(api.saveSettings).toHaveBeenCalledWith({
      ...current,
      relays: ["wss://relay.example", "wss://second.example"],
      jpeg_quality: 60,
    });
    expect(await screen.findByRole("status")).toHaveTextContent("Saved.");
  });

  it("shows the engine's validation error", async () => {
    const user = userEvent.setup();
    api.saveSettings.mockRejectedValue(
      new ApiError({
        code: "invalid_input",
        message: 'Relay "https://x": must start with wss://.',
        action: "Relay addresses look like wss://relay.example.com.",
      }),
    );
    render(Settings);
    await screen.findByLabelText(/Relays/);
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "must start with wss://",
    );
    expect(screen.queryByRole("status")).not.toBeInTheDocument();
  });

  it("exports the key under a repeated passphrase", async () => {
    const user = userEvent.setup();
    api.exportKey.mockResolvedValue("ncryptsec1qexample");
    render(Settings);
    await screen.findByLabelText(/Relays/);
    await user.type(
      screen.getByLabelText("Export passphrase"),
      "moving day 42",
    );
    await user.type(
      screen.getByLabelText("Repeat passphrase"),
      "moving day 41",
    );
    await user.click(screen.getByRole("button", { name: "Export key" }));
    expect(screen.getByRole("alert")).toHaveTextContent(
      "The two passphrases differ.",
    );
    expect(api.exportKey).not.toHaveBeenCalled();

    await user.clear(screen.getByLabelText("Repeat passphrase"));
    await user.type(
      screen.getByLabelText("Repeat passphrase"),
      "moving day 42",
    );
    await user.click(screen.getByRole("button", { name: "Export key" }));
    expect(api.exportKey).toHaveBeenCalledWith("moving day 42");
    expect(await screen.findByLabelText("Encrypted key")).toHaveValue(
      "ncryptsec1qexample",
    );
    expect(screen.getByLabelText("Export passphrase")).toHaveValue("");
  });
});
