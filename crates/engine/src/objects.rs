//! What the object detector's classes are called and how they are told: the 80 COCO classes
//! with their English and Chinese names and the two-level categories tiia's `DetectLabel`
//! answers (`FirstCategory` / `SecondCategory`), the image's tags (each class once, its best
//! score), and which classes are vehicles for `RecognizeCar`.

use crate::evidence::Object;

/// A category, in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Category {
    pub zh: &'static str,
    pub en: &'static str,
}

const fn category(zh: &'static str, en: &'static str) -> Category {
    Category { zh, en }
}

const PEOPLE: Category = category("人物", "People");
const ANIMALS: Category = category("动物", "Animals");
const PLANTS: Category = category("植物", "Plants");
const FOOD: Category = category("美食", "Food");
const THINGS: Category = category("物品", "Objects");

const PERSON: Category = category("人", "Person");
const VEHICLES: Category = category("交通工具", "Vehicles");
const STREET: Category = category("公共设施", "Street furniture");
const BIRDS: Category = category("鸟类", "Birds");
const PETS: Category = category("宠物", "Pets");
const LIVESTOCK: Category = category("家畜", "Livestock");
const WILD: Category = category("野生动物", "Wild animals");
const WEAR: Category = category("服饰箱包", "Clothing and bags");
const SPORTS: Category = category("运动器材", "Sports equipment");
const TABLEWARE: Category = category("餐具", "Tableware");
const FRUIT: Category = category("水果", "Fruit");
const VEGETABLES: Category = category("蔬菜", "Vegetables");
const DISHES: Category = category("食品", "Dishes");
const FURNITURE: Category = category("家具", "Furniture");
const POTTED: Category = category("盆栽", "Potted plants");
const ELECTRONICS: Category = category("电子产品", "Electronics");
const APPLIANCES: Category = category("家用电器", "Appliances");
const HOUSEHOLD: Category = category("日用品", "Household items");
const TOYS: Category = category("玩具", "Toys");

/// One class the detector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectClass {
    pub en: &'static str,
    pub zh: &'static str,
    pub first: Category,
    pub second: Category,
}

const fn class(en: &'static str, zh: &'static str, first: Category, second: Category) -> ObjectClass {
    ObjectClass { en, zh, first, second }
}

/// The COCO classes in the detector's order.
pub const CLASSES: [ObjectClass; 80] = [
    class("person", "人", PEOPLE, PERSON),
    class("bicycle", "自行车", THINGS, VEHICLES),
    class("car", "汽车", THINGS, VEHICLES),
    class("motorcycle", "摩托车", THINGS, VEHICLES),
    class("airplane", "飞机", THINGS, VEHICLES),
    class("bus", "公共汽车", THINGS, VEHICLES),
    class("train", "火车", THINGS, VEHICLES),
    class("truck", "卡车", THINGS, VEHICLES),
    class("boat", "船", THINGS, VEHICLES),
    class("traffic light", "交通信号灯", THINGS, STREET),
    class("fire hydrant", "消防栓", THINGS, STREET),
    class("stop sign", "停车标志", THINGS, STREET),
    class("parking meter", "停车计时器", THINGS, STREET),
    class("bench", "长椅", THINGS, STREET),
    class("bird", "鸟", ANIMALS, BIRDS),
    class("cat", "猫", ANIMALS, PETS),
    class("dog", "狗", ANIMALS, PETS),
    class("horse", "马", ANIMALS, LIVESTOCK),
    class("sheep", "羊", ANIMALS, LIVESTOCK),
    class("cow", "牛", ANIMALS, LIVESTOCK),
    class("elephant", "大象", ANIMALS, WILD),
    class("bear", "熊", ANIMALS, WILD),
    class("zebra", "斑马", ANIMALS, WILD),
    class("giraffe", "长颈鹿", ANIMALS, WILD),
    class("backpack", "背包", THINGS, WEAR),
    class("umbrella", "雨伞", THINGS, WEAR),
    class("handbag", "手提包", THINGS, WEAR),
    class("tie", "领带", THINGS, WEAR),
    class("suitcase", "行李箱", THINGS, WEAR),
    class("frisbee", "飞盘", THINGS, SPORTS),
    class("skis", "滑雪板", THINGS, SPORTS),
    class("snowboard", "单板滑雪板", THINGS, SPORTS),
    class("sports ball", "球", THINGS, SPORTS),
    class("kite", "风筝", THINGS, SPORTS),
    class("baseball bat", "棒球棒", THINGS, SPORTS),
    class("baseball glove", "棒球手套", THINGS, SPORTS),
    class("skateboard", "滑板", THINGS, SPORTS),
    class("surfboard", "冲浪板", THINGS, SPORTS),
    class("tennis racket", "网球拍", THINGS, SPORTS),
    class("bottle", "瓶子", THINGS, TABLEWARE),
    class("wine glass", "酒杯", THINGS, TABLEWARE),
    class("cup", "杯子", THINGS, TABLEWARE),
    class("fork", "叉子", THINGS, TABLEWARE),
    class("knife", "刀", THINGS, TABLEWARE),
    class("spoon", "勺子", THINGS, TABLEWARE),
    class("bowl", "碗", THINGS, TABLEWARE),
    class("banana", "香蕉", FOOD, FRUIT),
    class("apple", "苹果", FOOD, FRUIT),
    class("sandwich", "三明治", FOOD, DISHES),
    class("orange", "橙子", FOOD, FRUIT),
    class("broccoli", "西兰花", FOOD, VEGETABLES),
    class("carrot", "胡萝卜", FOOD, VEGETABLES),
    class("hot dog", "热狗", FOOD, DISHES),
    class("pizza", "披萨", FOOD, DISHES),
    class("donut", "甜甜圈", FOOD, DISHES),
    class("cake", "蛋糕", FOOD, DISHES),
    class("chair", "椅子", THINGS, FURNITURE),
    class("couch", "沙发", THINGS, FURNITURE),
    class("potted plant", "盆栽植物", PLANTS, POTTED),
    class("bed", "床", THINGS, FURNITURE),
    class("dining table", "餐桌", THINGS, FURNITURE),
    class("toilet", "马桶", THINGS, FURNITURE),
    class("tv", "电视", THINGS, ELECTRONICS),
    class("laptop", "笔记本电脑", THINGS, ELECTRONICS),
    class("mouse", "鼠标", THINGS, ELECTRONICS),
    class("remote", "遥控器", THINGS, ELECTRONICS),
    class("keyboard", "键盘", THINGS, ELECTRONICS),
    class("cell phone", "手机", THINGS, ELECTRONICS),
    class("microwave", "微波炉", THINGS, APPLIANCES),
    class("oven", "烤箱", THINGS, APPLIANCES),
    class("toaster", "烤面包机", THINGS, APPLIANCES),
    class("sink", "水槽", THINGS, FURNITURE),
    class("refrigerator", "冰箱", THINGS, APPLIANCES),
    class("book", "书", THINGS, HOUSEHOLD),
    class("clock", "钟表", THINGS, HOUSEHOLD),
    class("vase", "花瓶", THINGS, HOUSEHOLD),
    class("scissors", "剪刀", THINGS, HOUSEHOLD),
    class("teddy bear", "泰迪熊", THINGS, TOYS),
    class("hair drier", "吹风机", THINGS, APPLIANCES),
    class("toothbrush", "牙刷", THINGS, HOUSEHOLD),
];

impl ObjectClass {
    /// The class of a detector's index; `None` beyond the 80.
    pub fn of(index: u8) -> Option<&'static ObjectClass> {
        CLASSES.get(usize::from(index))
    }

    /// The class of an English name (`"car"`).
    pub fn named(en: &str) -> Option<u8> {
        CLASSES.iter().position(|c| c.en == en).map(|i| i as u8)
    }
}

/// A class found in the image and its best score (0-1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tag {
    pub class: &'static ObjectClass,
    pub score: f32,
}

/// The image's tags: each class found once, with its best score, the highest first (ties in the
/// classes' order).
pub fn tags(objects: &[Object]) -> Vec<Tag> {
    let mut best: Vec<(u8, f32)> = Vec::new();
    for object in objects {
        match best.iter_mut().find(|(class, _)| *class == object.class) {
            Some((_, score)) => *score = score.max(object.score),
            None => best.push((object.class, object.score)),
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    best.into_iter().filter_map(|(class, score)| Some(Tag { class: ObjectClass::of(class)?, score })).collect()
}

named_enum! {
    /// The kinds of vehicle `RecognizeCar` reports (COCO's motor vehicles for the road).
    pub enum VehicleType {
        Car = "car",
        Bus = "bus",
        Truck = "truck",
        Motorcycle = "motorcycle",
    }
}

impl VehicleType {
    /// The vehicle type of a detector's class; `None` for anything else.
    pub fn of(class: u8) -> Option<VehicleType> {
        VehicleType::parse(ObjectClass::of(class)?.en)
    }

    /// The type as the cloud names it.
    pub fn zh(self) -> &'static str {
        match self {
            VehicleType::Car => "轿车",
            VehicleType::Bus => "客车",
            VehicleType::Truck => "货车",
            VehicleType::Motorcycle => "摩托车",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(class: &str, score: f32) -> Object {
        Object { frame: 0, class: ObjectClass::named(class).unwrap(), score, bbox: [0, 0, 10, 10] }
    }

    #[test]
    fn every_class_has_both_names_and_categories() {
        for c in &CLASSES {
            assert!(!c.en.is_empty() && !c.zh.is_empty(), "{c:?}");
            assert!(!c.first.zh.is_empty() && !c.second.en.is_empty(), "{c:?}");
        }
        assert_eq!(ObjectClass::of(2).unwrap().en, "car");
        assert!(ObjectClass::of(80).is_none());
    }

    #[test]
    fn tags_keep_each_class_once_with_its_best_score() {
        let found = tags(&[object("person", 0.5), object("tie", 0.6), object("person", 0.9)]);
        let names: Vec<(&str, f32)> = found.iter().map(|t| (t.class.en, t.score)).collect();
        assert_eq!(names, [("person", 0.9), ("tie", 0.6)]);
        assert!(tags(&[]).is_empty());
    }

    #[test]
    fn vehicles_are_the_road_motor_vehicles() {
        let types: Vec<&str> = (0..80).filter_map(VehicleType::of).map(|t| t.as_str()).collect();
        assert_eq!(types, ["car", "motorcycle", "bus", "truck"]);
        assert_eq!(VehicleType::Motorcycle.zh(), "摩托车");
    }
}
