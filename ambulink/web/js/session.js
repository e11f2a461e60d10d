// The signed-in session shared by every page: the token, REST calls and authenticated sockets.
//
// The token never goes into a URL the server sees: a page opened from a link the demo printed
// carries it in the fragment (#token=...), which browsers do not send; it is then kept in
// sessionStorage (per tab) and the fragment is cleared. Otherwise the page shows a login form
// (the demo's password login, see demoLogin).

const KEY = "ambulink.token";

export function currentToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get("token");
  if (fromLink) {
    sessionStorage.setItem(KEY, fromLink);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return sessionStorage.getItem(KEY);
}

export function setToken(token) { sessionStorage.setItem(KEY, token); keepFresh(); }
export function clearToken() { sessionStorage.removeItem(KEY); }

// Tokens live 10 minutes; a page open for a whole consult renews its token a minute before
// expiry (POST /api/token/refresh, same claims; the hub ends sessions 12 h after sign-in).
const RENEW_BEFORE_S = 60;
let renewal = null;

function keepFresh() {
  clearTimeout(renewal);
  const exp = claims()?.exp;
  if (!exp) return;
  const inMs = Math.max((exp - RENEW_BEFORE_S) * 1000 - Date.now(), 1000);
  renewal = setTimeout(async () => {
    try {
      const reply = await api("/api/token/refresh", { method: "POST" });
      setToken(reply.token);
    } catch (error) {
      console.warn("could not renew the sign-in:", error.message);
    }
  }, inMs);
}

/** Claims of the current token (not verified here; the hub verifies every call). */
export function claims(token = currentToken()) {
  if (!token) return null;
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch { return null; }
}

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/** fetch() with the bearer token and JSON in and out; errors carry the hub's message. */
export async function api(path, { method = "GET", body } = {}) {
  const token = currentToken();
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data?.error?.code ?? "http_error", data?.error?.message ?? response.statusText);
  return data;
}

/** The demo's password login: stores and returns the token (role: specialist, crew, dispatch). */
export async function demoLogin(password, { role = "specialist", unit = null, name = "demo" } = {}) {
  const reply = await api("/api/demo/login", { method: "POST", body: { password, role, unit, name } });
  setToken(reply.token);
  return reply;
}

/**
 * A WebSocket to `path` that sends the token as its first message (browsers cannot set headers
 * on sockets). `onMessage` gets each parsed message; `extra` is merged into the auth message.
 */
export function openSocket(path, onMessage, { extra = {}, onClose = () => {} } = {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${path}`);
  socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token: currentToken(), ...extra }));
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
  socket.onclose = (event) => onClose(event);
  return socket;
}

if (currentToken()) keepFresh();

/**
 * Wire the page's demo login form (#login with #password and #login-error; the app in #app):
 * `loginOptions()` gives demoLogin's options (role, unit, name), `onSignedIn` starts the app.
 * Returns `showLogin(why)`, which hides the app and shows the form with a reason.
 */
export function loginForm(loginOptions, onSignedIn) {
  const $ = (id) => document.getElementById(id);
  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await demoLogin($("password").value, loginOptions());
      onSignedIn();
    } catch (error) { $("login-error").textContent = error.message; }
  });
  return (why = "") => {
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = why;
  };
}
