/** @param {import('../../../../types/context').HookContext<import('./todo').Todo>} context */
function Run(context) {
  // Changes to context.data are saved.
  context.data.title = context.data.title.trim();
  if (!context.data.assignedTo) context.data.assignedTo = context.me ? context.me.username : 'nobody';
}
