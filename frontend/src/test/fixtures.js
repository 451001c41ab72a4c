// Values shaped exactly like the Go side's JSON (app/engineapi).

export const catalogue = {
  updated_at: "2026-11-21T10:00:00Z",
  worker_name: "Alice",
  projects: [
    { id: 12, name: "Website", customer: "ACME" },
    { id: 13, name: "Support", customer: "ACME" },
  ],
  activities: [
    { id: 5, name: "Development", project: 12 },
    { id: 6, name: "Meetings", project: null },
    { id: 7, name: "Tickets", project: 13 },
  ],
  policy: {
    segment_seconds: 600,
    screenshots: 2,
    blur: false,
    review_seconds: 120,
    idle_seconds: 300,
    jpeg_quality: 80,
    max_width: 1920,
  },
};

export function state(overrides = {}) {
  return {
    preview: false,
    onboarded: true,
    locked: false,
    worker_name: "Alice",
    running: false,
    paused: false,
    session: null,
    segment: null,
    elapsed_seconds: 0,
    activity: { active_seconds: 0, percent: 0, keys: 0, clicks: 0, moves: 0 },
    source: "none",
    network: {
      relays: [{ url: "wss://relay.example", status: "connected" }],
      blossoms: [],
      dvm_last_seen: null,
      pending: 0,
    },
    idle: null,
    error: null,
    at: "2026-11-21T10:03:20Z",
    ...overrides,
  };
}

export const runningSession = {
  id: "0123456789abcdef0123456789abcdef",
  project_id: 12,
  project_name: "Website",
  activity_id: 5,
  activity_name: "Development",
  memo: "landing page",
  started_at: "2026-11-21T10:01:50Z",
};

// A 1×1 JPEG as a data: URL, like the engine's thumbnails.
export const tinyJpeg =
  "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

export function segment(overrides = {}) {
  return {
    id: "seg-1",
    session_id: runningSession.id,
    index: 0,
    start: "2026-11-21T10:00:00Z",
    end: "2026-11-21T10:10:00Z",
    project_name: "Website",
    activity_name: "Development",
    thumbnail: "",
    screenshots: 2,
    deleted: 0,
    active_seconds: 420,
    state: "queued",
    review_until: null,
    ...overrides,
  };
}
