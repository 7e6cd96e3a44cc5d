package ooo

// Stats is the body of GET / (and of Database.Keys): every key the storage holds,
// sorted case-insensitively, empty but not null when there is none. Decode a key list
// into it.
type Stats struct {
	Keys []string `json:"keys"`
}

// Storage pairs a Database with an active flag, as upstream ooo exports it. Nothing in
// ooo reads or writes it (a Database reports its own state through Active); it exists
// so that programs that name the type keep compiling.
type Storage struct {
	Active bool
	Db     Database
}
