// Validate (every POST and PUT of a todo): a title of at most 100 characters, a priority from 1
// to 10. validate_test.go tests it with hookstest, without a server.
package todos

import "strings"

func Run(ctx *EventContext) error {
	title, _ := ctx.Data["title"].(string)
	if strings.TrimSpace(title) == "" {
		ctx.Error("title", "is required")
	} else if len(title) > 100 {
		ctx.Error("title", "is too long")
	}
	if p, ok := ctx.Data["priority"].(float64); ok && (p < 1 || p > 10) {
		ctx.Error("priority", "must be from 1 to 10")
	}
	return nil
}
