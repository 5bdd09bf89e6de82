/* Background imports and exports on the project page: the two forms post to the API, and the jobs
   list (with progress bars and download links) is polled every 2 s while a job is queued or running,
   every 10 s otherwise (jobs started elsewhere appear), and not while the tab is hidden. */
(function () {
  "use strict";

  const root = document.getElementById("jobs");
  if (!root) return;
  const list = document.getElementById("job-rows");
  const message = document.getElementById("job-message");
  let timer = null;
  const ACTIVE_MS = 2000; // while a job is queued or running
  const IDLE_MS = 10000; // to see jobs started elsewhere (the API, another tab, the command line)

  const { csrfToken } = Api;

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function describe(job) {
    if (job.status === "failed") return job.error;
    const s = job.summary || {};
    if (job.kind === "import" && job.status === "done") {
      return `${s.imported} imported, ${s.duplicates} duplicates, ${s.labeled} labeled, ${s.n_rejected} rejected`;
    }
    if (job.kind === "export" && job.status === "done") return `${s.items} items`;
    return "";
  }

  function render(jobs) {
    list.replaceChildren();
    for (const job of jobs) {
      const row = document.createElement("tr");
      cell(row, `#${job.id}`);
      const source = job.params.folder ? `from ${job.params.folder}` : `of ${job.params.files} uploaded files`;
      cell(row, job.kind === "export" ? `export (${job.params.format})` : `import ${source}`);
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = job.progress;
      cell(row, `${job.status} `).appendChild(bar);
      const result = cell(row, describe(job));
      const rejected = (job.summary && job.summary.rejected) || [];
      if (rejected.length) {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "why rejected";
        const items = document.createElement("ul");
        for (const r of rejected.slice(0, 50)) {
          const li = document.createElement("li");
          li.textContent = `${r.name}: ${r.error}`;
          items.appendChild(li);
        }
        details.append(summary, items);
        result.appendChild(details);
      }
      if (job.download_url) {
        const link = document.createElement("a");
        link.href = job.download_url;
        link.textContent = " download";
        result.appendChild(link);
      }
      list.appendChild(row);
    }
    if (!jobs.length) cell(list.appendChild(document.createElement("tr")), "No jobs yet.").colSpan = 4;
    return jobs.some((job) => job.status === "queued" || job.status === "running");
  }

  const watched = new Set(); // jobs seen queued or running: their end is announced

  function announce(jobs) {
    for (const job of jobs) {
      const active = job.status === "queued" || job.status === "running";
      if (active) watched.add(job.id);
      else if (watched.delete(job.id)) {
        const what = job.kind === "export" ? `Export #${job.id} (${job.params.format})` : `Import #${job.id}`;
        message.textContent = job.status === "done" ? `${what} is done: ${describe(job)}.` : `${what} failed: ${job.error}`;
        message.className = job.status === "done" ? "muted" : "error";
      }
    }
  }

  async function refresh() {
    clearTimeout(timer);
    let active = false;
    if (!document.hidden) {
      try {
        const response = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok && !response.redirected) {
          const jobs = await response.json();
          announce(jobs);
          active = render(jobs);
        }
      } catch (error) {
        /* the server did not answer: ask again at the next tick */
      }
    }
    timer = setTimeout(refresh, active ? ACTIVE_MS : IDLE_MS);
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    for (const box of form.querySelectorAll("input[type=checkbox]")) data.set(box.name, box.checked ? "true" : "false");
    if (data.get("manifest") && !data.get("manifest").size) data.delete("manifest");
    const response = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: data,
    });
    const body = await response.json().catch(() => ({}));
    message.textContent = response.ok ? `Job #${body.id} queued; it runs in the background.` : body.detail || JSON.stringify(body);
    message.className = response.ok ? "muted" : "error";
    if (response.ok) watched.add(body.id);
    refresh();
  }

  for (const form of root.querySelectorAll("form")) form.addEventListener("submit", submit);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();
