/** @param {import('../../../../types/context').HookContext} context */
function Run(context) {
  // In BeforeRequest, context.event is the request: GET POST PUT DELETE QUERY.
  if (context.event === 'DELETE' && !context.isRoot && !context.me) {
    context.cancel('log in to delete todos', 401);
  }
  if (context.event === 'GET' && context.query.$limit === undefined) context.query.$limit = 50;
}
