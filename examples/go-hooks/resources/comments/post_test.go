package comments

import (
	"testing"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
	"github.com/deployd-ts/deployd-ts/hooks-go/hookstest"
)

func TestCommentCountsOnItsTodo(t *testing.T) {
	res := hookstest.Run(Run, hookstest.Input{
		Event: "post",
		Data:  map[string]interface{}{"todoId": "t1", "text": "soon"},
		Dpd: func(call hookstest.DpdCall) (interface{}, error) {
			if call.Method == "GET" {
				return map[string]interface{}{"id": "t1", "title": "x", "comments": 1}, nil
			}
			return map[string]interface{}{"id": "t1", "comments": call.Body["comments"]}, nil
		},
	})
	if res.Cancel != nil || len(res.DpdCalls) != 2 || res.DpdCalls[1].Body["comments"] != 2.0 {
		t.Errorf("cancel %+v, calls %+v", res.Cancel, res.DpdCalls)
	}
}

func TestCommentOnAMissingTodo(t *testing.T) {
	res := hookstest.Run(Run, hookstest.Input{
		Event: "post",
		Data:  map[string]interface{}{"todoId": "gone", "text": "?"},
		Dpd:   func(hookstest.DpdCall) (interface{}, error) { return nil, &hooks.DpdError{Status: 404, Message: "not found"} },
	})
	if res.Errors["todoId"] != "no such todo" {
		t.Errorf("errors %v", res.Errors)
	}
}
