/* The managers' dashboard on the project page, drawn here only (the page sends its empty frame):
   polls the dashboard figures at once and then every 2 s (while the tab is visible) and draws them
   in place: training progress, classes (and those with too few labels), annotators, agreement, the
   last failure. The learning curve is the server's SVG, fetched whenever the set of ready versions
   changes. The page's counts, model line and versions are its live sections (live.js), not drawn here. Whether workers
   are up comes from /health/workers/, asked less often (it waits for their pings). */
(function () {
  "use strict";

  const root = document.getElementById("dashboard");
  if (!root) return;
  const POLL_MS = 2000;
  const WORKERS_MS = 15000;
  const $ = (id) => document.getElementById(id);
  const dash = "–";

  const percent = (share) => (share === null || share === undefined ? dash : `${Math.round(share * 100)}%`);
  const fixed = (value, digits) => (value === null || value === undefined ? dash : value.toFixed(digits));

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    Object.assign(node, attributes || {});
    return node;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, data };
  }

  function renderTraining(data) {
    const bar = $("training-progress");
    const text = $("training-text");
    const run = data.training;
    if (run) {
      bar.hidden = false;
      bar.value = run.progress;
      text.textContent = `v${run.number} training on ${run.n_labels} labels: ${percent(run.progress)}`;
    } else {
      bar.hidden = true;
      text.textContent = data.training_requested ? "A retrain is scheduled." : "Not training.";
    }
    const failure = data.last_error;
    $("last-error").hidden = !failure;
    if (failure) {
      $("last-error-version").textContent = `v${failure.number}`;
      $("last-error-text").textContent = failure.error;
    }
  }

  // The same SVG as the page's own rendering: the bar's length is an attribute, not an inline style.
  function svgElement(tag, attributes) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  function renderClasses(classes) {
    const most = Math.max(1, ...classes.map((c) => c.n));
    const rows = classes.map((c) => {
      const bar = svgElement("svg", { class: "bar", viewBox: "0 0 100 1", preserveAspectRatio: "none", "aria-hidden": "true" });
      bar.append(svgElement("rect", { width: String(Math.round((c.n / most) * 100)), height: "1" }));
      const row = element("li");
      // Box projects: images holding the class, and its boxes
      const n = c.boxes === undefined ? String(c.n) : `${c.n} · ${c.boxes} boxes`;
      row.append(element("span", c.name, { className: "bar-name" }), bar, element("span", n, { className: "bar-n" }));
      return row;
    });
    $("class-bars").replaceChildren(...rows);
  }

  function renderAnnotators(annotators) {
    const rows = annotators.map((a) => {
      const row = element("tr");
      const cells = [a.user, String(a.n_labels), fixed(a.labels_per_hour, 0), percent(a.acceptance_rate), fixed(a.median_s, 1)];
      row.append(...cells.map((text) => element("td", text)));
      return row;
    });
    if (!rows.length) {
      const row = element("tr");
      row.append(element("td", "No labels yet.", { colSpan: 5 }));
      rows.push(row);
    }
    $("annotator-rows").replaceChildren(...rows);
  }

  function renderAgreement(agreement) {
    const panel = $("agreement-panel");
    if (!panel) return;
    panel.hidden = !agreement;
    if (!agreement) return;
    $("agreement-items").textContent = agreement.items;
    $("mean-agreement").textContent = fixed(agreement.mean_agreement, 2);
    $("fleiss-kappa").textContent = fixed(agreement.fleiss_kappa, 2);
    const rows = agreement.annotators.map((a) => {
      const row = element("tr");
      row.append(...[a.username, String(a.n), percent(a.agreement_with_consensus)].map((text) => element("td", text)));
      return row;
    });
    $("agreement-rows").replaceChildren(...rows);
  }

  function renderUnderCovered(classes) {
    const line = $("under-covered");
    line.textContent = Figures.underCovered(classes);
    line.hidden = !line.textContent;
  }

  async function renderCurve(points) {
    const numbers = points.map((p) => p.number).join(",");
    const svg = $("learning-curve");
    if (!svg || svg.dataset.numbers === numbers) return;
    const response = await fetch(root.dataset.curveUrl, { credentials: "same-origin" });
    if (response.ok && !response.redirected) svg.outerHTML = await response.text(); // not a login page
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const { ok, status, data } = await getJson(root.dataset.url);
        if (ok) {
          renderTraining(data);
          renderClasses(data.classes);
          renderUnderCovered(data.under_covered);
          renderAnnotators(data.annotators);
          renderAgreement(data.agreement);
          await renderCurve(data.learning_curve);
          $("dashboard-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
        } else {
          $("dashboard-updated").textContent = `not updated: ${status}`;
        }
      } catch (error) {
        $("dashboard-updated").textContent = "not updated: the server did not answer";
      }
    }
    setTimeout(poll, POLL_MS);
  }

  async function pollWorkers() {
    const line = $("workers-status");
    if (!document.hidden) {
      try {
        const { data } = await getJson(root.dataset.workersUrl);
        const workers = (data && data.workers) || [];
        const training = workers.filter((name) => (data.queues[name] || []).includes("training"));
        if (!workers.length) {
          line.textContent = data && data.error ? `Workers: ${data.error}` : "Workers: none answered; training will wait.";
        } else if (!training.length) {
          line.textContent = `Workers: ${workers.length} up, none on the training queue; training will wait.`;
        } else {
          line.textContent = `Workers: ${workers.length} up (${training.join(", ")} on the training queue).`;
        }
        line.className = workers.length && training.length ? "ok" : "warn";
      } catch (error) {
        line.textContent = "Workers: unknown (the server did not answer).";
        line.className = "warn";
      }
    }
    setTimeout(pollWorkers, WORKERS_MS);
  }

  poll();
  pollWorkers();
})();
