module github.com/taskagent/taskagent

go 1.26.8
