package actor

import "github.com/taskagent/taskagent/internal/errs"

func invalidInput(err error) error {
	return errs.E(errs.Invalid, "decode method input: %v", err)
}
