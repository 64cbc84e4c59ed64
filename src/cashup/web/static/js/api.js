// The API client of the desk: bearer token from the session, errors turned into words.

import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body || {};
  }

  /** Field errors as {field: message}, for showing each beside its input. */
  get fields() {
    const out = {};
    for (const item of this.body.errors || []) out[item.field.split(".").pop()] = item.message;
    return out;
  }
}

function describe(status, body) {
  if (!body || typeof body !== "object") return `The service answered ${status}.`;
  const parts = [body.detail || body.error || `The service answered ${status}.`];
  for (const item of body.errors || []) {
    if (!parts[0].includes(item.message)) parts.push(`${item.field}: ${item.message} (${item.rule})`);
  }
  return parts.join(" ");
}

/** Call the API; resolve with the JSON body (or null), reject with an ApiError in words. */
export async function api(method, path, body, token = session.token) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, { detail: `The service cannot be reached (${error.message}).` });
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text };
  }
  if (!response.ok) {
    if (response.status === 401 && token === session.token) session.expired(describe(401, parsed));
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

/** A query string from an object, leaving out empty values (arrays repeat the key). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, item);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
