module github.com/gitgrant/gitgrant

go 1.26.0

require (
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415
	github.com/xeipuuv/gojsonschema v1.2.0
	golang.org/x/text v0.43.0
	gopkg.in/yaml.v3 v3.0.1
)

require github.com/xeipuuv/gojsonpointer v0.0.0-20180127040702-4e3ac2762d5f // indirect
