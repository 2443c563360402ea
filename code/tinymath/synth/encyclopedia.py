"""Encyclopedia-style English built from facts (animals, countries, inventions, planets, elements) for `edu_english`.

Each entity has a few facts; each fact can be said in several ways, and a paragraph picks some facts in a random
order, a wording for each, and sometimes a title, an opening or a comparison with another entity. Paragraphs about
the same entity therefore share facts and vocabulary without sharing most of their word sequences, as different
web pages about one subject do.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# name, plural, class, habitat, food, typical lifespan in years (None: varies too much to state), a feature
ANIMALS = (
    ("elephant", "elephants", "mammal", "the grasslands and forests of Africa and Asia",
     "grass, leaves, bark and fruit", 60, "uses its trunk to breathe, smell, drink and pick things up"),
    ("giraffe", "giraffes", "mammal", "the open savannas of Africa", "leaves from tall acacia trees", 25,
     "is the tallest land animal, and its neck alone can be two metres long"),
    ("lion", "lions", "mammal", "the grasslands of Africa", "zebras, antelopes and other large animals", 14,
     "lives in family groups called prides"),
    ("penguin", "penguins", "bird", "the cold coasts and seas of the southern half of the world",
     "fish, squid and krill", 20, "cannot fly but uses its wings as flippers to swim"),
    ("owl", "owls", "bird", "woods, fields and farmland", "mice, voles and large insects", 10,
     "hunts at night and can turn its head much further round than a person can"),
    ("frog", "frogs", "amphibian", "ponds, streams and damp meadows", "insects, worms and slugs", 8,
     "starts life as a tadpole that lives in water and breathes through gills"),
    ("salmon", "salmon", "fish", "rivers and the open ocean", "insects, shrimp and smaller fish", 5,
     "swims back up the river where it hatched in order to lay its eggs"),
    ("honeybee", "honeybees", "insect", "hives in hollow trees or wooden boxes", "nectar and pollen", None,
     "tells other bees where to find flowers by doing a special dance"),
    ("dolphin", "dolphins", "mammal", "warm and temperate seas", "fish and squid", 40,
     "breathes air through a blowhole on the top of its head"),
    ("tortoise", "tortoises", "reptile", "dry grasslands, deserts and islands", "grass, weeds and cactus", 100,
     "carries a hard shell that it can pull its head and legs into"),
    ("crocodile", "crocodiles", "reptile", "rivers, lakes and swamps in warm countries", "fish, birds and mammals",
     70, "can lie almost hidden in water with only its eyes and nostrils showing"),
    ("bat", "bats", "mammal", "caves, hollow trees and old buildings", "insects and fruit", 20,
     "is the only mammal that can truly fly"),
    ("polar bear", "polar bears", "mammal", "the sea ice of the Arctic", "seals", 25,
     "has a thick layer of fat and dense fur that keep it warm in freezing water"),
    ("kangaroo", "kangaroos", "mammal", "the grasslands and open woods of Australia", "grass and leaves", 20,
     "carries its young in a pouch and moves by hopping on its strong back legs"),
    ("eagle", "eagles", "bird", "mountains, cliffs and tall trees", "fish, rabbits and other small animals", 25,
     "can spot prey from high in the sky with its sharp eyesight"),
    ("shark", "sharks", "fish", "oceans all over the world", "fish, seals and squid", 30,
     "has a skeleton made of cartilage instead of bone"),
    ("ant", "ants", "insect", "nests under the ground, in wood or in mounds of soil", "seeds, sugar and insects",
     None, "can carry objects many times heavier than its own body"),
    ("camel", "camels", "mammal", "the deserts of Africa and Asia", "dry grass, thorny plants and leaves", 40,
     "can go for many days without drinking water"),
    ("hummingbird", "hummingbirds", "bird", "gardens and forests of the Americas", "nectar and tiny insects", 5,
     "beats its wings so fast that they hum, and it can even fly backwards"),
    ("octopus", "octopuses", "mollusc", "rocky sea floors and coral reefs", "crabs, shrimp and shellfish", 2,
     "has eight arms and can change the colour of its skin to hide"),
    ("rabbit", "rabbits", "mammal", "meadows, woods and sand dunes", "grass, clover and vegetables", 9,
     "lives in a network of underground tunnels called a warren"),
    ("wolf", "wolves", "mammal", "forests, mountains and tundra of the northern world", "deer, elk and smaller prey",
     12, "lives and hunts in a family group called a pack"),
    ("butterfly", "butterflies", "insect", "gardens, meadows and forests", "nectar from flowers", None,
     "begins life as a caterpillar and changes inside a chrysalis"),
    ("snail", "snails", "mollusc", "gardens, woods and ponds", "leaves and rotting plants", 5,
     "glides along on a layer of slime and carries its shell on its back"),
    ("hedgehog", "hedgehogs", "mammal", "hedges, gardens and woodland edges", "beetles, worms and caterpillars", 4,
     "rolls into a tight ball of sharp spines when it is frightened"),
    ("zebra", "zebras", "mammal", "the grasslands of eastern and southern Africa", "grass", 25,
     "has a pattern of stripes that is different on every animal"),
    ("gorilla", "gorillas", "mammal", "the rainforests of central Africa", "leaves, stems and fruit", 40,
     "is the largest of the apes and lives in family groups led by a silverback"),
    ("swan", "swans", "bird", "lakes, rivers and slow streams", "water plants and small water animals", 20,
     "often stays with the same partner for many years"),
    ("parrot", "parrots", "bird", "tropical forests", "seeds, nuts and fruit", 50,
     "can copy sounds, and some can even copy human words"),
    ("chameleon", "chameleons", "reptile", "the forests of Africa and Madagascar", "insects", 5,
     "can move each of its eyes on its own to look in two directions at once"),
    ("newt", "newts", "amphibian", "ponds and damp woodland", "insects, worms and tadpoles", 10,
     "can grow back a lost leg or tail"),
    ("seahorse", "seahorses", "fish", "shallow seas among seagrass and coral", "tiny shrimp", 3,
     "swims upright, and it is the father that carries the eggs until they hatch"),
    ("ladybird", "ladybirds", "insect", "gardens, fields and hedges", "aphids", None,
     "warns birds with its bright red colour that it tastes bad"),
    ("koala", "koalas", "mammal", "the eucalyptus forests of eastern Australia", "eucalyptus leaves", 15,
     "sleeps for up to twenty hours a day"),
    ("beaver", "beavers", "mammal", "rivers and lakes in North America and Europe", "bark, twigs and water plants",
     12, "builds dams of sticks and mud across streams"),
    ("whale shark", "whale sharks", "fish", "warm oceans", "plankton and small fish", 80,
     "is the largest fish in the sea, yet it eats some of the smallest food"),
)
# planet, position from the sun, kind, a fact about it
PLANETS = (
    ("Mercury", "first", "a small rocky planet", "It has almost no air, so its nights are freezing cold."),
    ("Venus", "second", "a rocky planet", "Thick clouds trap heat, making it the hottest planet."),
    ("Earth", "third", "a rocky planet", "It is the only planet known to have life."),
    ("Mars", "fourth", "a rocky planet", "Its red colour comes from iron oxide, or rust, in its soil."),
    ("Jupiter", "fifth", "a gas giant", "It is the largest planet, and its Great Red Spot is a giant storm."),
    ("Saturn", "sixth", "a gas giant", "It is famous for its wide rings of ice and rock."),
    ("Uranus", "seventh", "an ice giant", "It spins on its side, tipped over compared with the other planets."),
    ("Neptune", "eighth", "an ice giant", "It has the fastest winds measured on any planet."),
)
# element, symbol, atomic number, state at room temperature, a use
ELEMENTS = (
    ("hydrogen", "H", 1, "gas", "It is the lightest element and the main fuel of the stars."),
    ("helium", "He", 2, "gas", "It is lighter than air, so it is used to fill party balloons."),
    ("carbon", "C", 6, "solid", "Diamond and the graphite in pencils are both made of it."),
    ("nitrogen", "N", 7, "gas", "It makes up most of the air we breathe."),
    ("oxygen", "O", 8, "gas", "Animals need it to release energy from their food."),
    ("sodium", "Na", 11, "solid", "Together with chlorine it forms ordinary table salt."),
    ("aluminium", "Al", 13, "solid", "It is light and does not rust, so it is used for cans and aircraft."),
    ("silicon", "Si", 14, "solid", "It is used to make computer chips."),
    ("iron", "Fe", 26, "solid", "It is the main ingredient of steel."),
    ("copper", "Cu", 29, "solid", "It carries electricity well, so it is used in wires."),
    ("silver", "Ag", 47, "solid", "It is a shiny metal used for jewellery and coins."),
    ("gold", "Au", 79, "solid", "It does not tarnish, which is why old gold objects still shine."),
    ("mercury", "Hg", 80, "liquid", "It is one of the few metals that is liquid at room temperature."),
    ("lead", "Pb", 82, "solid", "It is very heavy and soft, and it blocks X-rays."),
    ("neon", "Ne", 10, "gas", "It glows red-orange in signs when electricity passes through it."),
    ("calcium", "Ca", 20, "solid", "Bones and teeth need it to stay strong."),
)
CLASS_NOTE = {
    "mammal": "Like other mammals, it has hair or fur and feeds its young on milk.",
    "bird": "Like every bird, it has feathers and lays eggs with hard shells.",
    "reptile": "Like other reptiles, it has scaly skin and relies on the sun to warm its body.",
    "amphibian": "Like other amphibians, it can live both in water and on land.",
    "fish": "Like other fish, it breathes through gills and swims with the help of its fins.",
    "insect": "Like all insects, it has six legs and a body in three parts.",
    "mollusc": "Like other molluscs, it has a soft body without a backbone.",
}
# country, capital, continent, main language, a fact about it
COUNTRIES = (
    ("France", "Paris", "Europe", "French", "The Eiffel Tower in Paris was finished in 1889."),
    ("Japan", "Tokyo", "Asia", "Japanese", "Japan is made up of thousands of islands in the Pacific Ocean."),
    ("Egypt", "Cairo", "Africa", "Arabic", "The river Nile flows north through Egypt to the Mediterranean Sea."),
    ("Brazil", "Brasilia", "South America", "Portuguese", "Much of the Amazon rainforest lies inside Brazil."),
    ("Canada", "Ottawa", "North America", "English and French", "Canada is the second largest country by area."),
    ("Australia", "Canberra", "Oceania", "English", "The Great Barrier Reef lies off the north-east coast."),
    ("India", "New Delhi", "Asia", "Hindi and English", "The Himalaya mountains run along India's northern edge."),
    ("Kenya", "Nairobi", "Africa", "Swahili and English", "Kenya is famous for its national parks and wildlife."),
    ("Mexico", "Mexico City", "North America", "Spanish", "Ancient pyramids built by the Maya stand in Mexico."),
    ("Italy", "Rome", "Europe", "Italian", "Italy is shaped a little like a boot reaching into the sea."),
    ("Norway", "Oslo", "Europe", "Norwegian", "Norway's coast is cut by long, deep sea inlets called fjords."),
    ("Peru", "Lima", "South America", "Spanish", "The ruins of Machu Picchu sit high in the Andes of Peru."),
    ("China", "Beijing", "Asia", "Mandarin Chinese", "The Great Wall of China stretches for thousands of "
     "kilometres."),
    ("Spain", "Madrid", "Europe", "Spanish", "Spain shares the Iberian Peninsula with Portugal."),
    ("Ghana", "Accra", "Africa", "English", "Ghana lies on the Gulf of Guinea in West Africa."),
    ("Argentina", "Buenos Aires", "South America", "Spanish", "Argentina's Aconcagua is the highest mountain in "
     "the Americas."),
    ("Germany", "Berlin", "Europe", "German", "The river Rhine flows through the west of Germany."),
    ("Greece", "Athens", "Europe", "Greek", "The first Olympic Games were held in ancient Greece."),
    ("Turkey", "Ankara", "Asia and Europe", "Turkish", "The city of Istanbul sits on both sides of the Bosporus."),
    ("Chile", "Santiago", "South America", "Spanish", "Chile is a long, narrow country between the Andes and the "
     "Pacific."),
    ("Morocco", "Rabat", "Africa", "Arabic and Berber", "The Atlas Mountains cross the middle of Morocco."),
    ("Vietnam", "Hanoi", "Asia", "Vietnamese", "Rice grows in the wide delta of the Mekong river in Vietnam."),
    ("Iceland", "Reykjavik", "Europe", "Icelandic", "Iceland has many volcanoes, hot springs and glaciers."),
    ("Nigeria", "Abuja", "Africa", "English", "Nigeria has more people than any other country in Africa."),
    ("Thailand", "Bangkok", "Asia", "Thai", "Thailand was never ruled by a European power."),
    ("Sweden", "Stockholm", "Europe", "Swedish", "Stockholm is built on fourteen islands."),
    ("Colombia", "Bogota", "South America", "Spanish", "Colombia has coasts on both the Pacific Ocean and the "
     "Caribbean Sea."),
    ("New Zealand", "Wellington", "Oceania", "English and Maori", "New Zealand is made up of two main islands."),
)
# invention, who is usually credited, when, what it changed
INVENTIONS = (
    ("the printing press", "Johannes Gutenberg", "around 1440", "made books far cheaper to produce"),
    ("the telephone", "Alexander Graham Bell", "in 1876", "let people talk to each other over long distances"),
    ("the light bulb", "Thomas Edison", "in 1879", "gave homes and streets a safe, steady light after dark"),
    ("the aeroplane", "the Wright brothers", "in 1903", "made it possible to cross oceans in hours"),
    ("the steam engine", "James Watt", "in the 1760s", "powered the factories and trains of the Industrial "
     "Revolution"),
    ("the telescope", "Hans Lippershey", "in 1608", "let astronomers study the moons and planets"),
    ("the radio", "Guglielmo Marconi", "in the 1890s", "carried news and music into homes without wires"),
    ("penicillin", "Alexander Fleming", "in 1928", "became the first widely used antibiotic and saved many lives"),
    ("the bicycle", "Karl Drais", "in 1817", "gave people a cheap way to travel under their own power"),
    ("the World Wide Web", "Tim Berners-Lee", "in 1989", "made it easy to share pages of information online"),
    ("the battery", "Alessandro Volta", "in 1800", "provided the first steady supply of electric current"),
    ("the vaccine", "Edward Jenner", "in 1796", "began the protection of people against deadly diseases"),
)

OPENINGS = ("Here are some facts about {}.", "This short guide is about {}.", "Let us learn about {}.",
            "Fact file: {}.", "Today's topic is {}.", "What do we know about {}?")
CLOSINGS = ("There is always more to discover about {}.", "You can read more about {} in the library.",
            "Now you know a little more about {}.", "Try to remember one new fact about {} today.")


def _animal_facts(a: tuple) -> list[tuple[str, ...]]:
    """Each fact of an animal as its alternative wordings."""
    name, many, kind, home, food, years, feature = a
    facts = [
        (f"The {name} is {_an(kind)}.", f"Scientists group the {name} with the {kind}s.",
         f"{many.capitalize()} belong to the group of animals called {kind}s."),
        (f"The {name} lives in {home}.", f"{many.capitalize()} are found in {home}.",
         f"In the wild, {many} make their homes in {home}."),
        (f"The {name} feeds on {food}.", f"{many.capitalize()} eat {food}.",
         f"The diet of the {name} is mostly {food}."),
        (f"The {name} {feature}.", f"One remarkable thing about the {name} is that it {feature}.",
         f"{_an(name).capitalize()} {feature}."),
        (CLASS_NOTE[kind],),
    ]
    if years is not None:
        facts.append((f"{_an(name).capitalize()} can live for about {years} years.",
                      f"In the wild, {many} usually live for around {years} years.",
                      f"The typical lifespan of {_an(name)} is about {years} years."))
    return facts


def _country_facts(c: tuple) -> list[tuple[str, ...]]:
    """Each fact of a country as its alternative wordings."""
    name, capital, continent, language, note = c
    return [
        (f"The capital of {name} is {capital}.", f"{capital} is the capital city of {name}.",
         f"The government of {name} meets in its capital, {capital}."),
        (f"{name} is a country in {continent}.", f"{name} lies in {continent}.",
         f"On a world map, {name} is found in {continent}."),
        (f"Most people in {name} speak {language}.", f"The main language of {name} is {language}.",
         f"In {name}, people mostly speak {language}."),
        (note,),
    ]


def _invention_facts(i: tuple) -> list[tuple[str, ...]]:
    """Each fact of an invention as its alternative wordings."""
    thing, who, when, effect = i
    return [
        (f"{thing.capitalize()} is usually credited to {who}, who developed it {when}.",
         f"{who} is remembered for {thing}, developed {when}.",
         f"{when.capitalize()}, {who} produced {thing}."),
        (f"{thing.capitalize()} {effect}.", f"In time, {thing} {effect}.",
         f"People say {thing} changed the world because it {effect}."),
        (f"Like many inventions, {thing} built on the ideas of earlier inventors.",
         f"Before {thing}, life was very different.",
         f"Today {thing} looks simple, but it was a great step forward."),
    ]


def _an(word: str) -> str:
    """`a` or `an` before `word`."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def _planet_facts(p: tuple) -> list[tuple[str, ...]]:
    """Each fact of a planet as its alternative wordings."""
    name, position, kind, note = p
    return [
        (f"{name} is the {position} planet from the sun.", f"Counting outwards from the sun, {name} comes "
         f"{position}.", f"{name} is planet number {PLANET_ORDER[position]} in order from the sun."),
        (f"{name} is {kind}.", f"Astronomers describe {name} as {kind}."),
        (note,),
        ("Like every planet, it travels around the sun in an orbit.", "It shines because it reflects sunlight.",
         "Space probes have been sent to study it."),
    ]


def _element_facts(e: tuple) -> list[tuple[str, ...]]:
    """Each fact of a chemical element as its alternative wordings."""
    name, symbol, number, state, note = e
    return [
        (f"The chemical symbol for {name} is {symbol}.", f"Chemists write {name} as {symbol}.",
         f"{symbol} is the symbol of {name}."),
        (f"The atomic number of {name} is {number}, so each of its atoms has {number} protons.",
         f"{name.capitalize()} is element number {number} in the periodic table."),
        (f"At room temperature {name} is a {state}.", f"{name.capitalize()} is a {state} at room temperature."),
        (note,),
    ]


def _lifespan_comparison(rng: random.Random) -> str:
    """Two animals compared by lifespan (both with a stated lifespan, and different ones)."""
    a, b = rng.sample([x for x in ANIMALS if x[5] is not None], 2)
    if a[5] == b[5]:
        return f"{_an(a[0]).capitalize()} and {_an(b[0])} both live for about {a[5]} years."
    old, young = (a, b) if a[5] > b[5] else (b, a)
    return rng.choice((f"{_an(old[0]).capitalize()} usually lives longer than {_an(young[0])}: about {old[5]} "
                       f"years compared with "
                       f"about {young[5]}.",
                       f"{young[1].capitalize()} live for about {young[5]} years, while {old[1]} can reach "
                       f"about {old[5]}."))


def _paragraph(rng: random.Random, subject: str, facts: list[tuple[str, ...]]) -> str:
    """Some facts in a random order, each in a random wording, sometimes with a title, opening or closing."""
    chosen = rng.sample(facts, rng.randint(1, len(facts)))
    sentences = [rng.choice(wordings) for wordings in chosen]
    if rng.random() < 0.3:
        sentences.insert(0, rng.choice(OPENINGS).format(subject))
    if rng.random() < 0.2:
        sentences.append(rng.choice(CLOSINGS).format(subject))
    body = " ".join(sentences)
    return f"{subject[0].upper()}{subject[1:]}\n{body}" if len(chosen) > 2 and rng.random() < 0.5 else body


def animal(rng: random.Random) -> str:
    a = rng.choice(ANIMALS)
    text = _paragraph(rng, a[1], _animal_facts(a))
    return f"{text} {_lifespan_comparison(rng)}" if rng.random() < 0.25 else text


def country(rng: random.Random) -> str:
    c = rng.choice(COUNTRIES)
    return _paragraph(rng, c[0], _country_facts(c))


def invention(rng: random.Random) -> str:
    i = rng.choice(INVENTIONS)
    return _paragraph(rng, i[0], _invention_facts(i))


def planet(rng: random.Random) -> str:
    p = rng.choice(PLANETS)
    return _paragraph(rng, p[0], _planet_facts(p))


def element(rng: random.Random) -> str:
    e = rng.choice(ELEMENTS)
    text = _paragraph(rng, e[0], _element_facts(e))
    return f"{text} {_atomic_comparison(rng, e)}" if rng.random() < 0.3 else text


def _atomic_comparison(rng: random.Random, e: tuple) -> str:
    """An element compared with another by atomic number, i.e. by the protons in each atom."""
    other = rng.choice([x for x in ELEMENTS if x is not e])
    big, small = (e, other) if e[2] > other[2] else (other, e)
    return rng.choice((f"An atom of {big[0]} has more protons than an atom of {small[0]}: {big[2]} against "
                       f"{small[2]}.",
                       f"{small[0].capitalize()} comes before {big[0]} in the periodic table, because its atomic "
                       f"number, {small[2]}, is smaller than {big[2]}."))


def capitals_quiz(rng: random.Random) -> str:
    """A short list of countries and their capitals, as in a revision sheet."""
    picked = rng.sample(COUNTRIES, rng.randint(3, 8))
    form = rng.choice(("{0}: {1}", "{1} ({0})", "{0} - capital {1}, in {2}", "{1} is in {0}."))
    title = rng.choice(("Capital cities", "Countries and their capitals", "Revision: world capitals"))
    return "\n".join([title, *(form.format(*c) for c in picked)])


PLANET_ORDER = {p[1]: i for i, p in enumerate(PLANETS, start=1)}
PROFILES: dict[str, Callable[[random.Random], str]] = {
    "animal": animal, "country": country, "invention": invention, "planet": planet, "element": element,
    "capitals": capitals_quiz,
}
