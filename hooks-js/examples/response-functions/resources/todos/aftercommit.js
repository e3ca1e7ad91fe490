/// <reference types="../../../../types/classic" />
// The seed page's example (seed-websocket-realtime.md, "AfterCommit Events & Response
// Modification"), verbatim from the next line down to the helpers. It reads `me`, so it expects a
// caller: with the master key `me` is root; for an anonymous caller `me.username` throws, which
// in AfterCommit is only logged (the write stands and the response goes out unchanged).
// aftercommit.js - Runs AFTER database commit but BEFORE HTTP response
if (this.status === 'completed') {
    // Emit real-time event
    emit('task_completed', {
        taskId: this.id,
        title: this.title,
        completedBy: me.username
    });
    
    // Modify the HTTP response to include additional data
    setResponseData({
        ...this,
        message: 'Congratulations! Task completed successfully!',
        points: calculateCompletionPoints(this.priority),
        nextSuggestion: getNextTaskSuggestion(me.id)
    });
}

// Add real-time notification for high-priority tasks
if (this.priority >= 8) {
    emit('high_priority_task', {
        taskId: this.id,
        title: this.title,
        assignedTo: this.assignedTo
    });
    
    // Add alert to response
    addResponseMessage('High priority task created - notifications sent!');
}

// ---- the two helpers the example calls --------------------------------------------------------
// A hook file is one function body, so function declarations further down are in scope above.
// Hooks cannot wait for anything synchronously: helpers used inside setResponseData(...) compute
// from what they are given.

/**
 * Points for finishing a task: 10 per priority level, plus a 50-point bonus from priority 8 up.
 * @param {unknown} priority
 * @returns {number}
 */
function calculateCompletionPoints(priority) {
  const level = Math.min(Math.max(Math.round(Number(priority) || 1), 1), 10);
  return level * 10 + (level >= 8 ? 50 : 0);
}

/**
 * What to do next, for the user `userId`: a text, and the request that lists that task.
 * @param {string | undefined} userId
 * @returns {{ text: string, href?: string }}
 */
function getNextTaskSuggestion(userId) {
  if (!userId) return { text: 'Log in to get suggestions' };
  return {
    text: 'Next: the most urgent task that is still open',
    href: '/todos?status=open&$sort[priority]=-1&$limit=1',
  };
}
