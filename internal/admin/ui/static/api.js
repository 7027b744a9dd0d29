// The admin API client: same origin, bearer token from sessionStorage
// (never the URL), problem+json errors turned into readable messages.

const TOKEN_KEY = "portunus-admin-token";

export class AuthError extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// session asks the dashboard handler whether the API needs the token.
export async function session() {
  const r = await fetch("session.json", { cache: "no-store" });
  if (!r.ok) throw new Error(`session.json: HTTP ${r.status}`);
  return r.json();
}

// api calls an /api/v1 endpoint and returns the decoded JSON body.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(`/api/v1/${path}`, {
    method, headers, cache: "no-store", credentials: "omit",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) throw new AuthError("the admin token was refused");
  const type = r.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await r.json() : { detail: await r.text() };
  if (!r.ok) {
    const msg = data.detail || data.title || `HTTP ${r.status}`;
    throw new Error(`${path}: ${msg}`);
  }
  return data;
}
