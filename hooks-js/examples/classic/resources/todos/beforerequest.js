/// <reference types="../../../../types/classic" />
// BeforeRequest runs first, for every request; `event` says which one: GET POST PUT DELETE QUERY.
// `data` exists here only for POST and PUT.

if (event === 'GET' || event === 'QUERY') {
  // Nobody lists more than 100 todos at once.
  if (!(Number(query.$limit) <= 100)) query.$limit = 100;
}

if (event === 'POST') {
  // Keep titles tidy before anything else sees them.
  if (typeof data.title === 'string') data.title = data.title.trim();
}
