/// <reference types="../../../../types/classic" />
// Get runs once for every document read. hide() leaves a field out of this response only;
// cancel() in a list drops just that document.

if (!me) hide('assignedTo');

// Internal reads (dpd calls from other hooks) see everything.
if (!internal && this.status === 'archived') cancel('archived', 404);
