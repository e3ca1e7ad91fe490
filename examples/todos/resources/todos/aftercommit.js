// The seed page's aftercommit.js (seed-websocket-realtime.md, "Custom Events with emit()"), plus
// its response message ("AfterCommit Events & Response Modification"). Two changes: `me` is null
// for a caller who is not logged in, so the names fall back to "someone"; and each event fires
// once — "urgent" when the task is created, "completed" when its status becomes completed.
var who = me ? me.username || 'root' : 'someone';

if (this.priority >= 8 && method === 'POST') {
    // Emit urgent task alert
    emit('urgent_task_created', {
        taskId: this.id,
        title: this.title,
        priority: this.priority,
        createdBy: who,
        timestamp: new Date()
    });
    // Add alert to response
    addResponseMessage('High priority task created - notifications sent!');
}

if (this.status === 'completed' && method !== 'DELETE' && (!previous || previous.status !== 'completed')) {
    // Emit completion celebration
    emit('task_completed', {
        taskId: this.id,
        title: this.title,
        completedBy: who,
        completionTime: new Date()
    });
    addResponseMessage('Congratulations! Task completed successfully!');
}
