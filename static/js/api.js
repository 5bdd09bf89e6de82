/* The JSON API as the pages call it: the session's CSRF token, a request helper that answers
   null for 204 and throws an Error (with .status) carrying the server's reason otherwise, a POST
   retried on network errors for idempotent calls, and client tokens for them. */
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

  /* A fresh client_token: what makes a retried label or undo answered once. */
  function newToken() {
    if (global.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  }

  /* POST, retried on network errors and 5xx (up to 5 times, backing off): only for requests that
     are safe to repeat. A label and an undo carry a client_token (the same one on every retry) so
     that the server answers a repeat without doing it twice; skip and release do nothing more the
     second time. */
  async function postRetried(path, body, attempt = 0) {
    try {
      return await request("POST", path, body);
    } catch (error) {
      if (error.status && error.status < 500) throw error;
      if (attempt >= 5) throw error;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      return postRetried(path, body, attempt + 1);
    }
  }

  global.Api = { beacon, csrfToken, request, newToken, postRetried };
})(window);
