/** @param {import('../../../../types/context').HookContext<import('./todo').Todo>} context */
function Run(context) {
  if (!context.me) context.hide('assignedTo');
}
