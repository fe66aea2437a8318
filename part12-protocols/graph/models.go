package graph

// User is a row of users.
type User struct {
	ID   int
	Name string
}

// Post is a row of posts.
type Post struct {
	ID     int
	UserID int
	Title  string
}

// Comment is a row of comments.
type Comment struct {
	ID       int
	PostID   int
	AuthorID int
	Body     string
}

// Ping is PingService's answer.
type Ping struct {
	Message     string
	TimestampMs string
}
