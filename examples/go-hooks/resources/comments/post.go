// Post (a new comment): the todo must exist, and its comment count goes up. ctx.Dpd runs the
// todos collection as this request's caller, through its rules and hooks (validate.go included).
// post_test.go tests it with hookstest, answering the dpd calls itself.
package comments

import "errors"

func Run(ctx *EventContext) error {
	todoID, _ := ctx.Data["todoId"].(string)
	todos := ctx.Dpd("todos")
	todo, err := todos.GetOne(todoID)
	var missing *DpdError
	if errors.As(err, &missing) && missing.Status == 404 {
		ctx.Error("todoId", "no such todo")
		return nil
	} else if err != nil {
		return err
	}
	count, _ := todo["comments"].(float64)
	_, err = todos.Put(todoID, map[string]interface{}{"comments": count + 1})
	return err
}
