// Command dpd is an example of the internal client in a Go hook: a Post hook on "comments" that
// refuses a comment on a todo that does not exist and counts the todo's comments on it. The calls
// run as the hook's caller, through the todos collection's rules and hooks.
// main_test.go tests it with hookstest, answering the dpd calls itself.
package main

import (
	"errors"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
)

func post(ctx *hooks.EventContext) error {
	todoID, _ := ctx.Data["todoId"].(string)
	todos := ctx.Dpd("todos")
	todo, err := todos.GetOne(todoID)
	var dpdErr *hooks.DpdError
	if errors.As(err, &dpdErr) && dpdErr.Status == 404 {
		ctx.Error("todoId", "no such todo")
		return nil
	} else if err != nil {
		return err
	}
	count, _ := todo["comments"].(float64)
	if _, err := todos.Put(todoID, map[string]interface{}{"comments": count + 1}); err != nil {
		return err
	}
	return nil
}

func main() {
	hooks.Register("post", post)
	hooks.Serve()
}
