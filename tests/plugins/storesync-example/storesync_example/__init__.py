"""An example third-party plugin: one connector type with an in-memory stream, and one transform."""

from pydantic import BaseModel, ConfigDict, SecretStr

from storesync import Connector, Stream, hookimpl


class ExampleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 3
    token: SecretStr | None = None


class ExampleConnector(Connector):
    name = "example"
    Settings = ExampleSettings
    default_mapping = "example.toml"

    def streams(self):
        return [Stream("people", "customer", reader=self._people)]

    def _people(self, cursor):
        for i in range(self.settings.count):
            yield {"id": i, "mail": f"Person{i}@Example.COM", "name": f"person {i}"}

    def check(self):
        return f"example connector with {self.settings.count} people"

    def send_message(self, message):  # declares the send_message capability
        return None


@hookimpl
def storesync_register_connectors(register):
    register(ExampleConnector)


@hookimpl
def storesync_register_transforms(register):
    register("shout", lambda ctx, **params: lambda value: str(value).upper() + "!")
