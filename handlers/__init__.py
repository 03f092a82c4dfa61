"""corpsync's domain: events → directory changes, the store, platform clients and full sync."""
