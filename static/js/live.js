/* The project page's live sections: every element marked data-live="<name>" is re-rendered by the
   server (templates/annotator/partials/project_<name>.html) and swapped in, so each figure has one
   source, the same template that drew the page. Polled every 3 s while the tab is visible, and at
   once when it becomes visible again; a section is touched only when its HTML changed (an open
   error's <details> stays open until something in its section changes). */
(function () {
  "use strict";

  const anchor = document.querySelector("[data-live][data-url]");
  if (!anchor) return;
  const POLL_MS = 3000;
  let timer = null;
  let inFlight = false;
  const shown = new Map(); // section name -> the HTML it was last given

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden || inFlight) return;
    inFlight = true;
    try {
      const response = await fetch(anchor.dataset.url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok && !response.redirected) {
        const { sections } = await response.json();
        for (const node of document.querySelectorAll("[data-live]")) {
          const html = sections[node.dataset.live];
          if (html === undefined || shown.get(node.dataset.live) === html) continue;
          shown.set(node.dataset.live, html);
          node.innerHTML = html;
          node.dispatchEvent(new CustomEvent("live-updated", { bubbles: true }));
        }
        anchor.dataset.updated = new Date().toISOString();
      }
    } catch (error) {
      /* the server did not answer: try again at the next tick */
    } finally {
      inFlight = false;
      timer = setTimeout(refresh, POLL_MS);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  timer = setTimeout(refresh, POLL_MS);
})();
