module pvdrun.test/httpget

go 1.19
