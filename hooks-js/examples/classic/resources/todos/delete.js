/// <reference types="../../../../types/classic" />
// Delete runs once for every document about to be deleted; cancel() keeps it.

cancelIf(this.status === 'open' && this.priority >= 8 && !isRoot, 'finish urgent todos before deleting them', 403);
