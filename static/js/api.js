/* The JSON API as the pages call it: the session's CSRF token, and a request helper that answers
   null for 204 and throws an Error (with .status) carrying the server's reason otherwise. */
(function (global) {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function request(method, path, body) {
    const response = await fetch(`/api${path}`, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.detail || JSON.stringify(data) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /* A POST that outlives the page (navigator.sendBeacon): a form with the CSRF token, each value
     of a list repeated under its name. Returns whether the browser queued it. */
  function beacon(path, fields) {
    const form = new FormData();
    form.append("csrfmiddlewaretoken", csrfToken());
    Object.entries(fields).forEach(([name, value]) =>
      (Array.isArray(value) ? value : [value]).forEach((v) => form.append(name, String(v)))
    );
    return Boolean(navigator.sendBeacon && navigator.sendBeacon(`/api${path}`, form));
  }

  global.Api = { beacon, csrfToken, request };
})(window);
