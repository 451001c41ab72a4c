// Formatting shared by the components. Times arrive from Go as RFC 3339 strings.

const pad = (n) => String(n).padStart(2, "0");

// formatDuration: 3723 → "01:02:03".
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

// formatCountdown: 400 → "6:40".
export function formatCountdown(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

// formatClock: local wall-clock time, "10:03" (or "10:03:17" with seconds).
export function formatClock(value, withSeconds = false) {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "–";
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

export function formatRange(start, end) {
  return `${formatClock(start)}–${formatClock(end)}`;
}

export function minutes(seconds) {
  return Math.round((seconds || 0) / 60);
}

export const SOURCE_LABELS = {
  activitywatch: "ActivityWatch",
  builtin: "built-in watcher",
  none: "none",
};
