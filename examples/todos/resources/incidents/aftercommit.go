// The seed page's aftercommit.go (seed-websocket-realtime.md, "Go Events"), with the two fixes Go
// itself demands (the type and the variable cannot share the name EventHandler; time must be
// imported), the same once-only conditions as todos/aftercommit.js, and a response message.
package main

import "time"

type eventHandler struct{}

func (h *eventHandler) Run(ctx interface{}) error {
	eventCtx := ctx.(*EventContext)

	// Check if this is a high-priority task
	if priority, ok := eventCtx.Data["priority"].(float64); ok && priority >= 8 && eventCtx.Method == "POST" {
		// Emit urgent task alert
		eventCtx.Emit("urgent_task_created", map[string]interface{}{
			"taskId":    eventCtx.Data["id"],
			"title":     eventCtx.Data["title"],
			"priority":  priority,
			"createdBy": eventCtx.Me["username"],
			"timestamp": time.Now(),
		})
	}

	// Check if task was completed
	if status, ok := eventCtx.Data["status"].(string); ok && status == "completed" && eventCtx.Previous["status"] != "completed" && eventCtx.Method != "DELETE" {
		eventCtx.Emit("task_completed", map[string]interface{}{
			"taskId":         eventCtx.Data["id"],
			"title":          eventCtx.Data["title"],
			"completedBy":    eventCtx.Me["username"],
			"completionTime": time.Now(),
		})
	}

	eventCtx.AddResponseMessage("incident recorded by aftercommit.go")
	return nil
}

var EventHandler = &eventHandler{}
