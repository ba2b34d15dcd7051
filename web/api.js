// The dashboard's API calls and its addresses: the JSON API under /v1, and the page's own links in
// the location hash (so links, reloads and the back button work with one page).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const enc = encodeURIComponent;

export const paths = {
  apps: '/v1/apps',
  app: (appId) => `/v1/apps/${enc(appId)}`,
  domains: (appId) => `/v1/apps/${enc(appId)}/domains`,
  domain: (appId, name) => `/v1/apps/${enc(appId)}/domains/${enc(name)}`,
};

export const links = {
  apps: '#/',
  app: (appId) => `#/apps/${enc(appId)}`,
  domain: (appId, name) => `#/apps/${enc(appId)}/domains/${enc(name)}`,
};

/** One API call; answers the JSON body or throws an ApiError carrying the API's own message. */
export async function request(key, method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'Cannot reach the Portico API. Check the connection and try again.');
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, data));
  return data;
}

/** ErrorResponse carries `error.message`; schema failures (422) carry FastAPI's `detail` list. */
function errorMessage(status, data) {
  if (typeof data?.error?.message === 'string') return data.error.message;
  if (Array.isArray(data?.detail)) {
    return data.detail
      .map((item) => `${(item.loc ?? []).slice(1).join('.') || 'request'}: ${item.msg}`)
      .join('; ');
  }
  return `The API answered ${status}.`;
}
