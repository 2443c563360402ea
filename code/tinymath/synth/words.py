"""Word lists the story templates draw from: names, countable things, prices, places, days and jobs."""

from __future__ import annotations

# (name, subject pronoun, possessive)
PEOPLE = tuple((n, "she", "her") for n in (
    "Natalia", "Ava", "Mia", "Sofia", "Olivia", "Emma", "Chloe", "Lena", "Priya", "Fatima", "Mei", "Rosa",
    "Hannah", "Julie", "Betty", "Grace", "Aisha", "Nora", "Yuki", "Isabel", "Zara", "Amara", "Lucia", "Ingrid",
)) + tuple((n, "he", "his") for n in (
    "James", "Liam", "Noah", "Mark", "Tom", "Carlos", "Raj", "Kenji", "Omar", "David", "Samuel", "Ben",
    "Diego", "Ali", "Felix", "Hugo", "Ivan", "Jamal", "Kwame", "Leo", "Mateo", "Nikhil", "Oscar", "Pedro",
))

# countable things: (plural, container)
THINGS = (
    ("apples", "baskets"), ("oranges", "crates"), ("cookies", "jars"), ("marbles", "bags"), ("stickers", "sheets"),
    ("pencils", "boxes"), ("books", "shelves"), ("eggs", "cartons"), ("cupcakes", "trays"), ("seashells", "buckets"),
    ("stamps", "albums"), ("crayons", "packs"), ("tomatoes", "rows"), ("flowers", "vases"), ("toy cars", "boxes"),
    ("muffins", "trays"), ("beads", "strings"), ("cards", "decks"), ("bottles", "cases"), ("candies", "bags"),
    ("balloons", "bunches"), ("tulips", "pots"), ("buttons", "tins"), ("chairs", "rows"), ("plums", "bowls"),
)

# things with a price: (singular, plural, low price, high price) in whole dollars
GOODS = (
    ("notebook", "notebooks", 2, 9), ("pen", "pens", 1, 5), ("shirt", "shirts", 8, 40), ("ticket", "tickets", 5, 30),
    ("sandwich", "sandwiches", 3, 12), ("book", "books", 6, 25), ("toy", "toys", 4, 20), ("plant", "plants", 3, 18),
    ("ball", "balls", 2, 15), ("mug", "mugs", 3, 14), ("hat", "hats", 6, 30), ("lamp", "lamps", 12, 60),
    ("pizza", "pizzas", 7, 20), ("puzzle", "puzzles", 5, 24), ("bracelet", "bracelets", 3, 16),
)

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
JOBS = ("babysitting", "tutoring", "walking dogs", "washing cars", "mowing lawns", "working at the bakery",
        "delivering newspapers", "painting fences")
VEHICLES = (("car", "drives"), ("train", "travels"), ("bus", "travels"), ("cyclist", "rides"), ("boat", "sails"))
GROUPS = ("students", "members of the club", "people at the party", "runners in the race", "guests at the wedding",
          "workers at the factory", "players in the league")
TRAITS = ("wear glasses", "walk to school", "play an instrument", "have a pet", "like pizza", "speak Spanish")
RELATIVES = ("brother", "sister", "cousin", "friend", "neighbor", "grandmother", "teacher")
