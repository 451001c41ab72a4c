// pow.do work diary: progressive enhancement only; every page works without it.
"use strict";
(function () {
  // Time zone selector: offer the reviewer's own zone, and apply a choice at once.
  const sel = document.querySelector("select[name=tz]");
  if (sel) {
    let mine = "";
    try { mine = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { mine = ""; }
    if (mine && mine !== "UTC") {
      let opt = Array.from(sel.options).find((o) => o.value === mine);
      if (!opt) {
        opt = document.createElement("option");
        opt.value = mine;
        sel.appendChild(opt);
      }
      opt.textContent = "Mine (" + mine + ")";
      opt.dataset.mine = "1";
    }
    sel.addEventListener("change", () => sel.form.submit());
  }

  // Grid cells open the segment in a dialog instead of leaving the day.
  const dialog = document.getElementById("detail");
  if (dialog && typeof dialog.showModal === "function") {
    const body = dialog.querySelector(".body");
    document.addEventListener("click", async (ev) => {
      const a = ev.target.closest("a.cell-link");
      if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      const url = new URL(a.href);
      url.searchParams.set("fragment", "1");
      try {
        const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!res.ok) throw new Error("HTTP " + res.status);
        // Same-origin HTML rendered (and escaped) by the server's templates.
        body.innerHTML = await res.text();
        dialog.dataset.segment = a.closest("[data-segment]").dataset.segment;
        dialog.showModal();
      } catch (e) {
        window.location.href = a.href;
      }
    });
    dialog.addEventListener("close", () => { body.innerHTML = ""; });
  }
})();
