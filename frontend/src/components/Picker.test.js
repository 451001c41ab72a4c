import { describe, it, expect, vi } from "vitest";
import { render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import PickerHarness from "../test/PickerHarness.svelte";
import { catalogue } from "../test/fixtures.js";

const chosen = () => JSON.parse(screen.getByTestId("chosen").textContent);
const optionNames = (select) =>
  within(select)
    .getAllByRole("option")
    .filter((o) => !o.disabled)
    .map((o) => o.textContent.trim());

describe("Picker", () => {
  it("offers the project's own and the global activities only", async () => {
    const user = userEvent.setup();
    render(PickerHarness, { catalogue });
    const project = screen.getByLabelText("Project");
    const activity = screen.getByLabelText("Activity");
    expect(optionNames(project)).toEqual(["Website — ACME", "Support — ACME"]);
    expect(activity).toBeDisabled();

    await user.selectOptions(project, "Website — ACME");
    expect(activity).toBeEnabled();
    expect(optionNames(activity)).toEqual(["Development", "Meetings"]);

    await user.selectOptions(activity, "Development");
    await user.type(screen.getByLabelText(/Memo/), "landing page");
    expect(chosen()).toEqual({
      projectId: 12,
      activityId: 5,
      memo: "landing page",
    });

    // Development belongs to Website only: switching project drops it.
    await user.selectOptions(project, "Support — ACME");
    expect(optionNames(activity)).toEqual(["Meetings", "Tickets"]);
    expect(chosen()).toMatchObject({ projectId: 13, activityId: null });

    // A global activity survives the switch back.
    await user.selectOptions(activity, "Meetings");
    await user.selectOptions(project, "Website — ACME");
    expect(chosen()).toMatchObject({ projectId: 12, activityId: 6 });
  });

  it("waits for a catalogue and explains an empty one", async () => {
    const user = userEvent.setup();
    const onrefresh = vi.fn();
    const { unmount } = render(PickerHarness, { catalogue: null, onrefresh });
    expect(screen.getByText(/Waiting for the catalogue/)).toBeInTheDocument();
    expect(screen.queryByLabelText("Project")).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Refresh projects" }));
    expect(onrefresh).toHaveBeenCalledTimes(1);
    unmount();

    render(PickerHarness, {
      catalogue: { ...catalogue, projects: [], activities: [] },
    });
    expect(screen.getByText(/not given you any projects/)).toBeInTheDocument();
  });
});
