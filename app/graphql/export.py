"""`python -m app.graphql.export > schema.graphql`: print the schema in SDL."""

from app.graphql.schema import schema_sdl

if __name__ == "__main__":
    print(schema_sdl(), end="")
