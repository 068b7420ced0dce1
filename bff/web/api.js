// Calls to the BFF's /api/: every one carries `Authorization: tma <initData>`. Answers are JSON;
// errors are problem+json and become an ApiError with the status and the server's detail.

import { initData } from './tg.js';

export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || '';
    this.problem = problem || null; // the problem+json document, for members beyond detail
  }
}

const TIMEOUT_MS = 10000;

// 32 random hex digits (crypto.getRandomValues works outside secure contexts too).
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// method, path under /api (e.g. "/notifications"), an optional body object. Resolves to the parsed
// answer (null for 204); rejects with ApiError (status 0: the network failed or timed out).
export async function api(method, path, body) {
  const headers = { Authorization: `tma ${initData}` };
  const init = { method, headers, signal: AbortSignal.timeout(TIMEOUT_MS) };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  // A write sent again (a retry, a double tap) gets its first answer again.
  if (method !== 'GET') headers['Idempotency-Key'] = randomKey();
  let res;
  try {
    res = await fetch(`/api${path}`, init);
  } catch (e) {
    throw new ApiError(0, 'The school cannot be reached. Check the connection and try again.');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!res.ok) throw new ApiError(res.status, json && json.detail, json);
  return json;
}

// A view's parts that did not arrive ({"service", "status", "detail"} entries), as one sentence.
export function missingParts(answer) {
  if (!answer || !answer.partial || !Array.isArray(answer.errors)) return '';
  return answer.errors.map((e) => e.service).join(', ');
}
