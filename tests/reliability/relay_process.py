"""Run the outbox relay of one database against RabbitMQ until its outbox is empty (for the kill -9 test).

``python -m tests.reliability.relay_process <database url> <amqp url> <exchange> <batch>``
"""

import asyncio
import sys

from cashup.config import Settings
from cashup.db.session import create_engine, create_sessionmaker
from cashup.events.broker import RabbitPublisher
from cashup.events.relay import Relay


async def main(database_url: str, broker_url: str, exchange: str, batch: int) -> None:
    engine = create_engine(Settings(database_url=database_url, _env_file=None))
    publisher = RabbitPublisher(broker_url, exchange)
    await publisher.start()
    try:
        await Relay(create_sessionmaker(engine), publisher=publisher, batch=batch).drain()
    finally:
        await publisher.stop()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
