package main

import (
	"reflect"
	"testing"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
	"github.com/deployd-ts/deployd-ts/hooks-go/hookstest"
)

func TestCommentCountsOnItsTodo(t *testing.T) {
	res := hookstest.Run(post, hookstest.Input{
		Event: "post",
		Data:  map[string]interface{}{"todoId": "t1", "text": "soon"},
		Dpd: func(call hookstest.DpdCall) (interface{}, error) {
			if call.Method == "GET" {
				return map[string]interface{}{"id": "t1", "comments": 2}, nil
			}
			return map[string]interface{}{"id": "t1", "comments": call.Body["comments"]}, nil
		},
	})
	if res.Cancel != nil || len(res.Errors) > 0 {
		t.Fatalf("cancel %+v, errors %v", res.Cancel, res.Errors)
	}
	want := []hookstest.DpdCall{
		{Collection: "todos", Method: "GET", ID: "t1", Query: map[string]interface{}{}, Body: map[string]interface{}{}},
		{Collection: "todos", Method: "PUT", ID: "t1", Query: map[string]interface{}{}, Body: map[string]interface{}{"comments": 3.0}},
	}
	if !reflect.DeepEqual(res.DpdCalls, want) {
		t.Errorf("dpd calls = %+v\nwant %+v", res.DpdCalls, want)
	}
}

func TestCommentOnAMissingTodo(t *testing.T) {
	res := hookstest.Run(post, hookstest.Input{
		Event: "post",
		Data:  map[string]interface{}{"todoId": "gone"},
		Dpd: func(hookstest.DpdCall) (interface{}, error) {
			return nil, &hooks.DpdError{Status: 404, Message: "not found"}
		},
	})
	if res.Errors["todoId"] != "no such todo" || len(res.DpdCalls) != 1 {
		t.Errorf("errors %v, calls %+v", res.Errors, res.DpdCalls)
	}
}

// A returned error is a failure (500): only ctx.Cancel answers with a 4xx.
func TestAFailingDpdCallFailsTheHook(t *testing.T) {
	res := hookstest.Run(post, hookstest.Input{
		Event: "post",
		Data:  map[string]interface{}{"todoId": "t1"},
		Dpd: func(hookstest.DpdCall) (interface{}, error) {
			return nil, &hooks.DpdError{Status: 403, Message: "not allowed to read here"}
		},
	})
	if res.Cancel == nil || res.Cancel.Status != 500 || !res.Cancel.IsError || res.Cancel.Message != "not allowed to read here" {
		t.Errorf("cancel = %+v", res.Cancel)
	}
}
