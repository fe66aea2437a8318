package main

// The generated protobuf code under gen/ comes from proto/ (make generate).
//go:generate go -C proto tool buf generate
