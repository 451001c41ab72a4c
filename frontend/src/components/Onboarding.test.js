import { describe, it, expect, vi, beforeEach } from "vitest";
import { render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import Onboarding from "./Onboarding.svelte";
import { api, ApiError } from "../lib/api.js";
import { resetApi } from "../test/mockApi.js";

vi.mock("../lib/api.js", async (orig) =>
  (await import("../test/mockApi.js")).mockApi(orig),
);

const LINK =
  "powdo://join?dvm=npub1dvm&relay=wss%3A%2F%2Frelay.example&blossom=https%3A%2F%2Fb.example&secret=nsec1x&name=Alice";

async function fill(
  user,
  { link = LINK, pass = "correct horse", repeat = pass } = {},
) {
  if (link) await user.type(screen.getByLabelText("Invite link"), link);
  await user.type(screen.getByLabelText("Passphrase"), pass);
  await user.type(screen.getByLabelText("Repeat passphrase"), repeat);
}

describe("Onboarding", () => {
  beforeEach(() => resetApi(api));

  it("refuses to submit without a link or with differing passphrases", async () => {
    const user = userEvent.setup();
    render(Onboarding);
    await fill(user, { link: "" });
    await user.click(screen.getByRole("button", { name: "Join" }));
    expect(screen.getByRole("alert")).toHaveTextContent(
      "Paste the invite link first.",
    );

    await user.type(screen.getByLabelText("Invite link"), LINK);
    await user.clear(screen.getByLabelText("Repeat passphrase"));
    await user.type(
      screen.getByLabelText("Repeat passphrase"),
      "correct horsf",
    );
    await user.click(screen.getByRole("button", { name: "Join" }));
    expect(screen.getByRole("alert")).toHaveTextContent(
      "The two passphrases differ.",
    );

    await user.clear(screen.getByLabelText("Passphrase"));
    await user.clear(screen.getByLabelText("Repeat passphrase"));
    await fill(user, { link: "", pass: "short" });
    await user.click(screen.getByRole("button", { name: "Join" }));
    expect(screen.getByRole("alert")).toHaveTextContent(
      "at least 8 characters",
    );
    expect(api.join).not.toHaveBeenCalled();
  });

  it("joins, shows the pairing fingerprint and continues by keyboard", async () => {
    const user = userEvent.setup();
    const result = {
      fingerprint: "apple-river-stone-cloud-maple-tiger",
      dvm_npub: "npub1dvm",
      own_npub: "npub1me",
      worker_name: "Alice",
    };
    api.join.mockResolvedValue(result);
    const onjoined = vi.fn();
    const oncontinue = vi.fn();
    render(Onboarding, { onjoined, oncontinue });

    await fill(user, { link: `  ${LINK}\n` });
    await user.keyboard("{Enter}"); // submit from the last field
    expect(api.join).toHaveBeenCalledWith(LINK, "correct horse");
    expect(onjoined).toHaveBeenCalledWith(result);

    expect(
      await screen.findByRole("heading", { name: "Joined as Alice" }),
    ).toBeInTheDocument();
    expect(screen.getByLabelText("Pairing fingerprint")).toHaveTextContent(
      "apple-river-stone-cloud-maple-tiger",
    );
    expect(screen.queryByLabelText("Passphrase")).not.toBeInTheDocument();

    const cont = screen.getByRole("button", { name: "Continue" });
    expect(cont).toHaveFocus();
    expect(oncontinue).not.toHaveBeenCalled();
    await user.keyboard("{Enter}");
    expect(oncontinue).toHaveBeenCalledTimes(1);
  });

  it("says so when the engine made no key (preview)", async () => {
    const user = userEvent.setup();
    api.join.mockResolvedValue({
      fingerprint: "",
      dvm_npub: "npub1dvm",
      own_npub: "",
      worker_name: "",
    });
    render(Onboarding);
    await fill(user);
    await user.click(screen.getByRole("button", { name: "Join" }));
    expect(
      await screen.findByText(/No pairing fingerprint/),
    ).toBeInTheDocument();
    expect(
      screen.queryByLabelText("Pairing fingerprint"),
    ).not.toBeInTheDocument();
  });

  it("shows the engine's refusal with what to do, and lets the worker retry", async () => {
    const user = userEvent.setup();
    api.join.mockRejectedValueOnce(
      new ApiError({
        code: "invite_expired",
        message: "This invite was already used.",
        action: "",
      }),
    );
    render(Onboarding);
    await fill(user);
    await user.click(screen.getByRole("button", { name: "Join" }));

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Invite expired");
    expect(alert).toHaveTextContent("This invite was already used.");
    expect(alert).toHaveTextContent("Ask your employer for a new invite link.");
    const join = screen.getByRole("button", { name: "Join" });
    expect(join).toBeEnabled();

    api.join.mockResolvedValueOnce({
      fingerprint: "a-b-c-d-e-f",
      dvm_npub: "",
      own_npub: "",
      worker_name: "",
    });
    await user.click(join);
    expect(await screen.findByText("a-b-c-d-e-f")).toBeInTheDocument();
    expect(api.join).toHaveBeenCalledTimes(2);
  });

  it("prefills a link the app was opened with", () => {
    render(Onboarding, { initialLink: LINK });
    expect(screen.getByLabelText("Invite link")).toHaveValue(LINK);
  });
});
